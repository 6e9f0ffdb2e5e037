"""What field staff read in the app (zh-CN); error titles live in core/messages.py with the error codes."""

TASK_KINDS = {"verify": "核实", "check": "核查"}
CREW_QUEUES = {"todo": "待处置", "doing": "处置中", "fixed": "已反馈待核查", "all": "全部"}
SITE_KINDS = {"road_work": "施工工地", "road_segment": "道路路段"}
