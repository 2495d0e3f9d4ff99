"""The one exception tree of evalbatch; the CLI maps each class to an exit code in one place.

EvalbatchError                  every error evalbatch raises on purpose
├── InputError          (exit 2) the user's input is wrong; nothing was written
│   ├── SuiteError               a suite or case file is invalid (carries file:line)
│   ├── ConfigError              a flag, env var or data-file override is invalid
│   └── BudgetExceeded           the projected cost is above the budget
├── NotFound            (exit 2) a run id or file that does not exist
│   └── MissingCredentials       no API key; raised before anything is written
├── ProviderError       (exit 3) the provider failed after retries; state is kept
├── StoreError          (exit 3) the store cannot be opened or migrated
├── RunNeedsAttention   (exit 3) a run cannot advance without a person (e.g. a batch failed)
└── RunLeased           (exit 3) another collector is advancing the run; this one skipped it
"""

from __future__ import annotations


class EvalbatchError(Exception):
    """Base class. ``str(err)`` is a one-line message for a person."""

    exit_code = 3


class InputError(EvalbatchError):
    exit_code = 2


class SuiteError(InputError):
    """A suite or case file is invalid. ``where`` is ``file:line`` or ``file (case id, field)``."""

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(InputError):
    pass


class BudgetExceeded(InputError):
    def __init__(
        self, projected_usd: float, budget_usd: float, what: str = "projected cost"
    ) -> None:
        self.projected_usd = projected_usd
        self.budget_usd = budget_usd
        super().__init__(
            f"{what} ${projected_usd:,.2f} is above the budget ${budget_usd:,.2f}; "
            "nothing was submitted (raise --budget or budget_usd to proceed)"
        )


class NotFound(InputError):
    pass


class ProviderError(EvalbatchError):
    """The provider failed. ``retryable``: trying again later may work (5xx, 429, transport).
    ``error_class`` (see records.ErrorClass) says whose trouble it is, when known."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        error_class: str | None = None,
    ) -> None:
        self.retryable = retryable
        self.status = status
        self.error_class = error_class
        super().__init__(message)

    @classmethod
    def http(cls, message: str, status: int, error_class: str) -> ProviderError:
        """An HTTP error answer: worth another try later only if it is transient or a 429."""
        retryable = error_class in ("transient", "rate_limit")
        return cls(message, retryable=retryable, status=status, error_class=error_class)

    @classmethod
    def unreachable(cls, action: str, base_url: str, exc: Exception) -> ProviderError:
        message = f"{action}: could not reach {base_url} ({exc.__class__.__name__})"
        return cls(message, retryable=True, error_class="transient")

    @classmethod
    def unexpected(cls, action: str, exc: Exception) -> ProviderError:
        return cls(f"{action}: {exc.__class__.__name__}: {exc}", retryable=False)


class MissingCredentials(InputError):
    def __init__(self, env_var: str) -> None:
        super().__init__(
            f"no API key: set {env_var} (or use --sandbox to run against the local simulator)"
        )


class StoreError(EvalbatchError):
    exit_code = 3


class RunNeedsAttention(EvalbatchError):
    exit_code = 3


class RunLeased(EvalbatchError):
    """Another collector holds the run's lease: this one skips it (nothing is wrong)."""

    exit_code = 3

    def __init__(self, run_id: str, holder: str, since: str | None) -> None:
        self.run_id = run_id
        self.holder = holder
        super().__init__(
            f"run {run_id} is being collected by {holder}"
            + (f" since {since}" if since else "")
            + "; skipped"
        )
