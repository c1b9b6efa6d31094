"""The agent CLIs gitteam is tested with: how each is installed, the command line docs/models.md gives for it,
and how it is pointed at the loopback server (its own config in HOME, copied into its private HOME by
`[sandbox] home_files`, or variables `[commands] agent_env` passes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from install import Package
from scripted import Wire
from wires import EDIT_FORMAT, Aider, Claude, Codex, Gemini

API_KEY = "sk-gitteam-test-0123456789"


@dataclass(frozen=True)
class Cli:
    package: Package
    version_line: str  # what `--version` prints
    command: str  # the CMDLINE of `command:CMDLINE`, exactly as docs/models.md gives it
    wire: Wire
    tools: tuple[str, ...]  # tools of its own the server must see in its main requests (aider: its edit format)
    agent_env: tuple[str, ...] = ()
    home_files: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)  # its config in HOME; {url} is the server's
    repo_files: Mapping[str, str] = field(default_factory=dict)  # what a repository its users have holds
    fails_on_api_error: bool = True  # exits non-zero when the model API refuses it
    printed_cost: str | None = None  # a regex for the money it prints (the last match in a round's output)
    counts_side_requests: bool = False  # its reported tokens include its side requests'

    @property
    def name(self) -> str:
        return self.package.command

    def configure(self, home: Path, url: str) -> dict[str, str]:
        """Write its config into `home`; returns the variables to set (the ones agent_env names)."""
        for relative, text in self.files.items():
            path = home / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{url}", url), encoding="utf-8")
        return self.environment(url)

    def environment(self, url: str) -> dict[str, str]:
        values = {"OPENAI_API_KEY": API_KEY, "ANTHROPIC_API_KEY": API_KEY, "GEMINI_API_KEY": API_KEY,
                  "OPENAI_API_BASE": f"{url}/v1", "GOOGLE_GEMINI_BASE_URL": url,
                  "ANTHROPIC_BASE_URL": url}
        return {name: values[name] for name in self.agent_env if name in values}


CODEX_CONFIG = """\
# A provider of its own for the loopback server: the built-in one tries a websocket first
model = "gpt-5.4"
model_provider = "loopback"

[model_providers.loopback]
name = "loopback"
base_url = "{url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false
"""

CODEX = Cli(
    package=Package("codex", "0.169.0", "npm", "@openai/codex"),
    version_line="codex-cli 0.169.0",
    command="codex exec --sandbox danger-full-access --json -",
    wire=Codex(),
    tools=("exec_command",),
    agent_env=("OPENAI_API_KEY",),
    home_files=(".codex/",),
    files={".codex/config.toml": CODEX_CONFIG},
)

AIDER_METADATA = """\
{"openai/loopback-model": {"max_input_tokens": 128000, "max_output_tokens": 8192, "max_tokens": 8192,
  "input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015, "litellm_provider": "openai",
  "mode": "chat"}}
"""

AIDER = Cli(
    package=Package("aider", "0.86.2", "pypi", "aider-chat"),
    version_line="aider 0.86.2",
    command=("aider --model openai/loopback-model --edit-format diff --message-file {prompt_file} --yes-always "
             "--no-auto-commits --no-dirty-commits --no-gitignore --no-check-update --no-analytics "
             "--analytics-log /dev/stdout --no-pretty --no-stream {files}"),
    wire=Aider(),
    tools=(EDIT_FORMAT,),
    agent_env=("OPENAI_API_KEY", "OPENAI_API_BASE"),
    home_files=(".gitconfig", ".aider.model.metadata.json"),  # aider insists on a git identity
    files={".aider.model.metadata.json": AIDER_METADATA},
    repo_files={".gitignore": ".aider*\n"},  # its history and repo-map cache (aider adds this itself)
    fails_on_api_error=False,  # `--message-file` prints the error and returns normally
    printed_cost=r'"total_cost": ([0-9.eE-]+)',  # the session's, in its analytics events
)

GEMINI_SETTINGS = """\
{
  "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": false}},
  "privacy": {"usageStatisticsEnabled": false},
  "general": {"disableAutoUpdate": true, "disableUpdateNag": true}
}
"""

GEMINI = Cli(
    package=Package("gemini", "0.61.0", "npm", "@google/gemini-cli"),
    version_line="0.61.0",
    command="gemini --yolo --output-format json -p {prompt}",
    wire=Gemini(),
    tools=("write_file", "replace", "read_file"),
    agent_env=("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL"),
    home_files=(".gemini/",),
    files={".gemini/settings.json": GEMINI_SETTINGS},
    counts_side_requests=True,  # its model router's request is in its stats
)

CLAUDE = Cli(
    package=Package("claude", "2.1.328", "npm", "@anthropic-ai/claude-code"),
    version_line="2.1.328 (Claude Code)",
    command="claude -p {prompt} --output-format json --permission-mode acceptEdits --allowedTools 'Bash(pytest:*)'",
    wire=Claude(),
    tools=("Write", "Edit", "Read", "Bash"),
    agent_env=("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    home_files=(".claude.json", ".claude/"),
    printed_cost=r'"total_cost_usd":\s*([0-9.eE-]+)',  # its price table's, for the model it asked for
)

CLIS = (CODEX, AIDER, GEMINI, CLAUDE)
