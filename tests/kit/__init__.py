"""What tests of every tier share: bounded waits (`waiting`), HTTP receivers on loopback for
the upstream's callbacks and the client's webhooks (`receivers`), the simulator-faults fixture
(`faults`). Importable as `kit` from every test directory (pytest's `pythonpath`)."""
