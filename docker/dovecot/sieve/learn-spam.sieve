# IMAPSieve: a message a user moves (or copies) into Junk trains Rspamd as spam.
require ["vnd.dovecot.pipe", "copy", "imapsieve"];
pipe :copy "rspamd-learn" ["spam"];
