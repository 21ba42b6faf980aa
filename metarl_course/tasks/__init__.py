"""Task distributions and the environments the course trains on."""

from gymnasium.envs.registration import register, registry

from metarl_course.tasks.bandits import BanditDistribution, BanditTask, BatchedBanditEnv, BernoulliBanditEnv
from metarl_course.tasks.batched import BatchedEnv
from metarl_course.tasks.distribution import TaskDistribution
from metarl_course.tasks.gridworld import BatchedGridNaviEnv, GridNaviDistribution, GridNaviEnv, GridNaviTask
from metarl_course.tasks.navigation import (
    BatchedNavigationEnv,
    Navigation2DEnv,
    NavigationDistribution,
    NavigationTask,
)
from metarl_course.tasks.sinusoid import (
    SinusoidBatch,
    SinusoidTask,
    SinusoidTaskDistribution,
    heldout_batch,
)
from metarl_course.tasks.tabular_mdp import (
    BatchedTabularMDPEnv,
    TabularMDPDistribution,
    TabularMDPEnv,
    TabularMDPTask,
)

# The course's gymnasium ids -> entry points. Registered once on import: a
# second import (or importlib.reload) finds the ids already there and skips them.
GYMNASIUM_IDS = {
    "metarl_course/Navigation2D-v0": "metarl_course.tasks.navigation:Navigation2DEnv",
    "metarl_course/BernoulliBandit-v0": "metarl_course.tasks.bandits:BernoulliBanditEnv",
    "metarl_course/TabularMDP-v0": "metarl_course.tasks.tabular_mdp:TabularMDPEnv",
    "metarl_course/GridNavi-v0": "metarl_course.tasks.gridworld:GridNaviEnv",
}
for _env_id, _entry_point in GYMNASIUM_IDS.items():
    if _env_id not in registry:
        register(id=_env_id, entry_point=_entry_point)
