"""Value-based algorithms for discrete actions: DQN on replay, PQN on rollouts."""
