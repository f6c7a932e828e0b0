"""mqchat workers: Dramatiq actors that store and route messages, and the storage layer behind them."""
