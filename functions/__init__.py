"""Lambda entry points: thin edges that parse, call one core function and map the result."""
