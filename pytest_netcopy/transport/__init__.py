"""Where the receiver runs and how senders reach it: the peer, wire records, the sender pool."""
