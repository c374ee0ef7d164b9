using System.Management.Automation;
using System.Text.RegularExpressions;
using GridArtifacts.Core;
using GridArtifacts.Model;

namespace GridArtifacts;

/// <summary>
/// The artifact filters that Get-GridArtifact and Save-GridArtifact share: which runs and experiments,
/// -Path and -Exclude wildcards over the relative path, and -Match, a regular expression as the
/// product's CLI had.
/// </summary>
internal sealed class ArtifactQuery
{
    private const int ExperimentConcurrency = 8;

    public ArtifactQuery(string[] runs, string[]? experiments, string[]? paths, string[]? exclude, string? match)
    {
        Runs = runs;
        Experiments = experiments;
        Paths = paths;
        Exclude = exclude;
        Match = match is null ? null : new Regex(match, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }

    public string[] Runs { get; }
    public string[]? Experiments { get; }
    public string[]? Paths { get; }
    public string[]? Exclude { get; }
    public Regex? Match { get; }

    /// <summary>Parses -Match, or throws a terminating, typed error for a pattern that is not a regular expression.</summary>
    public static Regex? CheckRegex(PSCmdlet cmdlet, string? pattern)
    {
        if (pattern is null) return null;
        try
        {
            return new Regex(pattern);
        }
        catch (ArgumentException ex)
        {
            var record = GridCmdlet.ToErrorRecord(new GridException(GridErrorKind.InvalidArgument, "InvalidMatchPattern", ex.Message, pattern, ex));
            record.ErrorDetails = new ErrorDetails($"-Match '{pattern}' is not a valid regular expression: {ex.Message}");
            cmdlet.ThrowTerminatingError(record);
            return null;
        }
    }

    /// <summary>The matching artifacts, experiment by experiment in the order given; per-item errors are posted.</summary>
    public async Task<List<GridArtifact>> ListAsync(GridCatalog catalog, Action<object> post, CancellationToken ct)
    {
        var pairs = await Targets.ResolveExperimentsAsync(catalog, Runs, Experiments, post, ct).ConfigureAwait(false);
        var listed = await ReadMany.AllAsync(pairs, (p, c) => catalog.Artifacts.GetArtifactsAsync(p.Run, p.Experiment, c), ct).ConfigureAwait(false);
        foreach (var e in listed.Errors) post(e);

        var include = Targets.Matcher(Paths);
        var exclude = Exclude is { Length: > 0 } ? Targets.Matcher(Exclude) : null;
        var found = new List<GridArtifact>();
        var literalHits = new HashSet<string>(StringComparer.Ordinal);
        foreach (var experiment in listed.Items)
        {
            foreach (var e in experiment.Errors) post(e);
            foreach (var a in experiment.Items)
            {
                if (!include(a.Path)) continue;
                if (exclude is not null && exclude(a.Path)) continue;
                if (Match is not null && !Match.IsMatch(a.Path)) continue;
                literalHits.Add(a.Path);
                found.Add(a);
            }
        }
        foreach (var p in Paths ?? Array.Empty<string>())
        {
            if (!Targets.IsWildcard(p) && !literalHits.Contains(p))
            {
                post(new GridException(GridErrorKind.NotFound, "ArtifactNotFound",
                    $"No artifact '{p}' in {string.Join(", ", pairs.Select(x => GridNames.ExperimentId(x.Run, x.Experiment)))}.", p));
            }
        }
        return found;
    }
}
