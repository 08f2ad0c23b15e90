from . import emboux_plan
from . import emboux_tenant
from . import emboux_domain
from . import emboux_portal
from . import contract
from . import sale_order
