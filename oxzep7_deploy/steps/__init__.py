"""Host steps the engine runs: the interpreter install, the release (each a batch of playbook runs)."""
