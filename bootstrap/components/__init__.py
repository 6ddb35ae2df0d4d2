"""One module per chapter of the install guide; each has `steps(ctx) -> list[Step]`."""
