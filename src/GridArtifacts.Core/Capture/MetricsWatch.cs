using GridArtifacts.Core.Metrics;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Capture;

/// <summary>
/// The capture agent's metrics: it hears of each metrics file uploaded and reads the local copy into the
/// experiment record (opened by <c>open</c>, which reads only what capture may), which the next heartbeat publishes (live) and the final status seals. A read costs
/// a pass over the file, so it happens only after a candidate went up, at most once an interval while the
/// script runs, and always at the end.
/// </summary>
internal sealed class MetricsWatch(TimeProvider clock, TimeSpan interval, Action<string> warning, Func<string, Stream> open)
{
    /// <summary>Each candidate uploaded, by artifact path: its local file and the time the manifest gave it.</summary>
    private readonly Dictionary<string, (string FullPath, DateTimeOffset Modified)> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _warned = new(StringComparer.Ordinal);
    private bool _changed;
    private DateTimeOffset _lastRead = DateTimeOffset.MinValue;

    /// <summary>An artifact that went up (from the upload workers, several at once).</summary>
    public void Noticed(string path, string fullPath, ManifestEntry entry)
    {
        if (!MetricsReader.IsCsvCandidate(path) && !MetricsReader.IsJsonCandidate(path)) return;
        lock (_files)
        {
            _files[path] = (fullPath, entry.Modified);
            _changed = true;
        }
    }

    /// <summary>
    /// Reads the metrics into <paramref name="record"/> when they are due. While the script runs, a file
    /// may be cut in the middle of a record it is writing, so a problem then keeps the earlier metrics and
    /// waits, unwarned, for the file's next upload or the final read, which warns once per file and problem.
    /// </summary>
    public void Refresh(ExperimentRecord record, bool final)
    {
        List<(string Path, DateTimeOffset Modified)> files;
        Dictionary<string, string> local;
        lock (_files)
        {
            if (_files.Count == 0 || (!final && (!_changed || clock.GetUtcNow() - _lastRead < interval))) return;
            _changed = false;
            files = _files.Select(f => (f.Key, f.Value.Modified)).ToList();
            local = _files.ToDictionary(f => f.Key, f => f.Value.FullPath, StringComparer.Ordinal);
        }
        _lastRead = clock.GetUtcNow();
        var problems = new List<string>();
        MetricsRecord? read;
        try
        {
            read = MetricsReader.Read(files, p => open(local[p]), problems.Add);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Removed or locked since it went up: what was read before stands.
            if (final) Warn($"The metrics were not read: {ex.Message}");
            return;
        }
        if (!final && read?.Problem is not null) return;
        record.Metrics = read;
        if (final) problems.ForEach(Warn);
    }

    private void Warn(string text)
    {
        if (_warned.Add(text)) warning(text);
    }
}
