"""`.gitteam.toml`: the typed schema, the layers and the one validation.

Layers, lowest first: built-in defaults, the user config (`$XDG_CONFIG_HOME/gitteam/config.toml`),
`<repo>/.gitteam.toml`, the environment (`GITTEAM_*`), then flags (dotted-key overrides). Every value
remembers where it came from, so each error names the key and the file (or variable) that set it.
The repository's file may not set what RESTRICTED lists: such settings are left out and reported.

`schema`: the sections as dataclasses, their defaults and rules, the validation of values.
`loader`: the files, the layers, RESTRICTED, the environment and the flags; the example file.
`example`: the .gitteam.toml `gitteam init` writes, keeping the settings of one it replaces.
The model-spec grammar is `gitteam.modelspec`'s, the allow-list entry syntax `gitteam.commandline`'s:
this package imports nothing of gitteam above those, `errors` and `secrets`.
"""

from gitteam.config.example import write_example
from gitteam.config.loader import (
    REPO_CONFIG,
    RESTRICTED,
    example_text,
    ignored_warning,
    is_restricted,
    load_config,
    user_config_path,
)
from gitteam.config.schema import (
    PROTECTED_PATHS,
    SECTIONS,
    CommandsConfig,
    Config,
    LimitsConfig,
    ModelDef,
    ProtectConfig,
    ReviewConfig,
    ReviewerDef,
    SandboxConfig,
    WorktreesConfig,
    check_role_specs,
    settings_of,
)

__all__ = [
    "PROTECTED_PATHS",
    "REPO_CONFIG",
    "RESTRICTED",
    "SECTIONS",
    "CommandsConfig",
    "Config",
    "LimitsConfig",
    "ModelDef",
    "ProtectConfig",
    "ReviewConfig",
    "ReviewerDef",
    "SandboxConfig",
    "WorktreesConfig",
    "check_role_specs",
    "example_text",
    "ignored_warning",
    "is_restricted",
    "load_config",
    "settings_of",
    "user_config_path",
    "write_example",
]
