from . import emboux_plan
from . import emboux_tenant
from . import emboux_domain
