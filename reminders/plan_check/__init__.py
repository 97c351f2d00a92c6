"""`plans check`: a plan file loaded, scheduled for sample patients and rendered, every problem
named at its file and line. Above the plan model, schedule and templating, which it exercises."""
