// What the page shows, in one store with named updates: the view reads it and changes it only through these.
// No DOM and no fetching (tests/page/state.test.mjs).

export const PAGE = 500; // rows rendered at once; "Show more" adds the next page

export function createState() {
  const s = {
    runs: [], runLimit: PAGE, run: null, experiments: [], selectedExps: new Set(), sort: null,
    artifacts: [], artifactLimit: PAGE, selected: new Set(), chartColumn: null,
  };
  return {
    get runs() { return s.runs; },
    get runLimit() { return s.runLimit; },
    get run() { return s.run; },
    get experiments() { return s.experiments; },
    get sort() { return s.sort; },
    get artifacts() { return s.artifacts; },
    get artifactLimit() { return s.artifactLimit; },
    get chartColumn() { return s.chartColumn; },
    isRunActive: (name) => s.runs.find((r) => r.name === name)?.active,
    anyRunActive: () => s.runs.some((r) => r.active),
    // The ticked experiments, in the experiments' order (names not listed, as from an address, kept apart).
    selectedExpNames: () => s.experiments.map((x) => x.name).filter((n) => s.selectedExps.has(n)),
    selectedExps: () => [...s.selectedExps],
    isExpSelected: (name) => s.selectedExps.has(name),
    selectedExpCount: () => s.selectedExps.size,
    isSelected: (key) => s.selected.has(key),
    selectedArtifacts: (keyOf) => s.artifacts.filter((a) => s.selected.has(keyOf(a))),

    setRuns(runs) { s.runs = runs; },
    showMoreRuns() { s.runLimit += PAGE; },
    resetRunLimit() { s.runLimit = PAGE; },
    // A run opened (or none): its experiments and artifacts are to be read again; the ticked ones are these.
    openRun(name, exps) {
      s.run = name;
      s.selectedExps = new Set(exps);
      s.experiments = [];
      s.artifacts = [];
      s.selected.clear();
    },
    // The run's experiments as read; one alone is ticked when none is.
    setExperiments(experiments, { tickSingle = false } = {}) {
      s.experiments = experiments;
      if (tickSingle && s.selectedExps.size === 0 && experiments.length === 1) s.selectedExps.add(experiments[0].name);
    },
    setSelectedExps(names) { s.selectedExps = new Set(names); },
    tickExperiment(name, on) { if (on) s.selectedExps.add(name); else s.selectedExps.delete(name); },
    // The same column again turns the order round; another sorts by it ascending.
    sortBy(key) { s.sort = s.sort?.key === key ? { key, dir: -s.sort.dir } : { key, dir: 1 }; },
    // The listed artifacts; picks of artifacts no longer listed go.
    setArtifacts(artifacts, keyOf) {
      s.artifacts = artifacts;
      const present = new Set(artifacts.map(keyOf));
      for (const k of [...s.selected]) if (!present.has(k)) s.selected.delete(k);
    },
    pick(key, on) { if (on) s.selected.add(key); else s.selected.delete(key); },
    showMoreArtifacts() { s.artifactLimit += PAGE; },
    resetArtifactLimit() { s.artifactLimit = PAGE; },
    setArtifactLimit(limit) { s.artifactLimit = limit; },
    setChartColumn(column) { s.chartColumn = column; },
  };
}
