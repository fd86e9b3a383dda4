"""The wanflow command line and the client of the HTTP API: what people run on their own
machines, never in Lambda (the layer, `shared/wanflow`, does not hold it)."""
