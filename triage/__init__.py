"""Petition triage (信访分拣): 诉访分离 sorting, department routing and escalation-risk flags."""

__version__ = "0.1.0"
