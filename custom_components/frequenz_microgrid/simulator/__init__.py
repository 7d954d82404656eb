"""Built-in microgrid simulator speaking the real Microgrid gRPC API (v1alpha18)."""
