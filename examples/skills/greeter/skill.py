"""The greeter skill: sagaflow's hello-world as a stepstone skill, offline.

    STEPSTONE_SKILLS_PATH=examples/skills stepstone launch greeter ann --await
    STEPSTONE_SKILLS_PATH=examples/skills stepstone launch greeter --arg name=ann --arg times=2

Each call below is checkpointed: a crash resumes after the last one, a replay gets the recorded
prompt text (even if the file changed since) and does not write the artifact again. Where
sagaflow calls a model, a skill would call one as a step too; this one stays offline.
"""

from stepstone import WorkflowContext, step
from stepstone.desk import skill


@step
def compose(system: str, user: str, times: int) -> str:
    # Stands in for a model call: a step's result is recorded, so it runs once per run.
    greeting = user.strip()
    return " ".join([greeting] * times)


@skill
async def greeter(ctx: WorkflowContext, name: str, times: int = 1) -> str:
    """Greet NAME (TIMES times), keep the prompt in the run's folder, say so in the inbox."""
    system = ctx.prompt("greeter.system")
    user = ctx.prompt("greeter.user", name=name)
    ctx.artifact("prompt.txt", f"{system}\n---\n{user}")
    greeting = await compose(system, user, times)
    ctx.notify(f"greeted {name}:\n{greeting}")
    return greeting
