"""Export definitions: saved, re-runnable, scheduled and subscribed exports (issue 15)."""
