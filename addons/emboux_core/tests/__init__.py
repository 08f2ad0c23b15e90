from . import test_sync_hooks
from . import test_validation
from . import test_security
from . import test_committed
from . import test_platform
from . import test_archive
from . import test_ownership
from . import test_error_codes
