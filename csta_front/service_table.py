"""Every ECMA-269 service this server answers, whole: services.py's and those of the modules of
their own (call data, predictive dialling, routeing), each registered as it is imported. Import
SERVICES from here, not from services.py, whose table alone lacks the others (which one a reader
gets must not depend on what happened to be imported before)."""
from __future__ import annotations

from csta_front import services_calldata, services_predictive, services_routeing  # noqa: F401  (they register)
from csta_front.services import SERVICES

__all__ = ["SERVICES"]
