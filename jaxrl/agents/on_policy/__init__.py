"""On-policy algorithms on rollouts (PPO)."""
