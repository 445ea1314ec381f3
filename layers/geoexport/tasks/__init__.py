"""Export tasks: storage of their state, guarded status transitions, and the create/get use cases."""
