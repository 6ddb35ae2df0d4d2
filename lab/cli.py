"""Placeholder until the CLI lands in this session (owned by the lead)."""


def main() -> int:
    raise SystemExit("lab: CLI not built yet")
