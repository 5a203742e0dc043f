"""metarl.agents: recurrent and memory-augmented cells, and actor-critics on them."""
