"""Reinforcement-learning pieces of the course: returns, losses, RL², MAML-RL and classic bandit baselines."""
