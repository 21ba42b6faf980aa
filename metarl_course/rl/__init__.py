"""Reinforcement-learning pieces of the course: returns, losses, RL², MAML-RL and classic bandit baselines.

* ``advantages``: GAE over time-major batches (bootstrapping stops only where a trial ends);
* ``rl2``: RL² (Duan et al. 2016): the GRU actor-critic over (s_t, a_{t-1}, r_{t-1}, d_{t-1}), PPO over whole
  trials, ``RL2Config`` and ``RL2Learner`` for :func:`metarl_course.training.train`;
* ``rl2_analysis``: RL² and the baselines on common bandits: regret, arm choices, the comparison table;
* ``bandit_game``: the chapter-05 game (you vs RL² vs Thompson sampling on the same arms);
* ``bandit_baselines``: random, greedy, epsilon-greedy, UCB1, Thompson, optimistic Thompson, Gittins.
* ``psrl``: posterior sampling for RL (PSRL), random play and the informed optimum on random tabular MDPs.
"""
