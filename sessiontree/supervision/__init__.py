"""The SchedulerActor (root of the supervision tree): the queue, spawn, restart
strategies, recovery and operator decisions."""
