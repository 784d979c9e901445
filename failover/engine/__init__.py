"""The execution engine: states, events, the DAG, actions and the coordinator that runs them."""
