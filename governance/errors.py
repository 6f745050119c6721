"""Re-export of the shared error hierarchy for the governance layer."""
from privacy.errors import (  # noqa: F401
    AccessDenied,
    BudgetExceeded,
    InputError,
    IntegrityFailure,
    PrivgovError,
    QualityGateFailed,
    WorkspaceError,
)
