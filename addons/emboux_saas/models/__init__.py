from . import emboux_plan
from . import emboux_tenant
from . import emboux_domain
from . import contract
from . import emboux_tenant_billing
from . import emboux_lifecycle
from . import emboux_portal
from . import sale_order
