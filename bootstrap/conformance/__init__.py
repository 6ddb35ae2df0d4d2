"""Conformance: the cloud judged by OpenStack's own tests (Tempest, the interop guidelines)."""
