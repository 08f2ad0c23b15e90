from . import test_plan
