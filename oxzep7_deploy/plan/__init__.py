"""Pure planning: spec + inventory -> waves -> batches -> steps."""

from oxzep7_deploy.plan.build import build_plan, plan_builds, plan_waves, split_batches
from oxzep7_deploy.plan.model import BuildStep, Gate, Plan, Wave, WheelStep

__all__ = ["BuildStep", "Gate", "Plan", "Wave", "WheelStep", "build_plan", "plan_builds", "plan_waves",
           "split_batches"]
