"""``kubectl barrack``: the operator's objects one command away (a kubectl plugin, kopf-free).

``graph`` knows which kind references which; ``trace``, ``why`` and ``cost`` turn objects as the
apiserver returns them into rows, pure; ``cluster`` reads and annotates them; ``render`` prints
tables, trees, JSON and YAML as kubectl does; ``main`` is the command line."""
