"""Knowledge of Xen's FF-A mediator: its console messages, its behaviour, its log. No I/O."""
