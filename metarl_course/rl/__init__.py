"""Reinforcement-learning pieces of the course: policies, sampling, returns, MAML-RL, RL² and bandit baselines.

* ``policies``: MAML-RL's Gaussian MLP policy and its losses; RL²'s GRU actor-critic;
* ``sampling``: experience of many tasks at once: MAML-RL's episodes, RL²'s trials;
* ``returns``: discounted returns, the linear baseline, GAE;
* ``trpo``: conjugate gradients and the TRPO step;
* ``maml_rl``: MAML-TRPO and ProMP on 2D navigation (``MAMLRLConfig``, ``MAMLRLLearner``) and their evaluation;
* ``pretrained``: the "pretrained" baseline of MAML-RL (TRPO on every goal, fine-tuned at test time);
* ``rl2``: RL² (Duan et al. 2016): PPO over whole trials, ``RL2Config`` and ``RL2Learner`` for
  :func:`metarl_course.training.train`, one table of the task families it is trained on;
* ``bandit_baselines``: random, greedy, epsilon-greedy, UCB1, Thompson, optimistic Thompson, Gittins;
* ``gittins``: the Gittins index; ``bayes_optimal``: the exact Bayes-optimal value of small bandit problems;
* ``rl2_analysis``: RL² and the baselines on common bandits: regret, arm choices, the comparison table;
* ``bandit_game``: the chapter-05 game (you vs RL² vs Thompson sampling on the same arms);
* ``psrl``: posterior sampling for RL (PSRL), random play and the informed optimum on random tabular MDPs;
* ``gridworld_bayes``: exact Bayes-optimal, told-the-goal, posterior-sampling and random references on
  VariBAD's gridworld, and the exact posterior over its goal cells;
* ``varibad``: VariBAD (Zintgraf et al. 2020): a VAE's belief over the task and a policy acting on it.
"""
