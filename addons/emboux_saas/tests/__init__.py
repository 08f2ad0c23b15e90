from . import test_plan
from . import test_billing
from . import test_lifecycle
from . import test_portal
from . import test_sale
from . import test_subdomains
from . import test_bad_input
from . import test_portal_vacation
