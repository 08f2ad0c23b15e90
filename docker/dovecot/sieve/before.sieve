# EmBoux, before every mailbox's own filters (Pigeonhole sieve_before,
# docs/inbound.md): mail the inbound filter (Rspamd) scored as spam carries
# "X-Spam: Yes" -- set by Rspamd only, the same header in the incoming
# message is removed first -- and is filed into Junk, created if missing.
# Nothing after this runs for it: no vacation reply to spam.
require ["fileinto", "mailbox"];
if header :is "X-Spam" "Yes" {
  fileinto :create "Junk";
  stop;
}
