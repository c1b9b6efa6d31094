"""The merge gate: diffs (`diff`, `chunks`), deterministic checks (`checks`), the policy (`gate`, `verdict`),
reviewer agents over the diff (`agents`, `scope`), the integrated result (`integrated`), CI output (`formats`)."""
