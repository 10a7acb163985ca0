"""Session actors, the persisted mailbox, and the message types they exchange."""
