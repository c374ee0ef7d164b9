using System.Globalization;
using System.Text;
using System.Text.Json;
using GridArtifacts.Core.Stores;

namespace GridArtifacts.Core.Metrics;

/// <summary>The last value of each metric in a file, how many data rows it had, and why it gave none (malformed), or null.</summary>
public sealed record MetricsResult(IReadOnlyDictionary<string, double> Values, int Rows, string? Problem);

/// <summary>
/// A metrics.csv as curves: the x axis (<c>step</c>, else <c>epoch</c>, else null for the row number), the
/// metric columns that have points, and each one's [x, y] points, thinned uniformly when there were more.
/// </summary>
public sealed record MetricsSeries(string? X, IReadOnlyList<string> Columns,
    IReadOnlyDictionary<string, double[][]> Points, int Rows, bool Downsampled, string? Problem);

/// <summary>
/// Reads the metrics that scripts already write: a top-level <c>metrics.json</c> of numbers, or a
/// <c>metrics.csv</c> as PyTorch Lightning's CSVLogger writes it (one column per metric, rows that fill
/// only some of them). Files come from the scripts, so anything may be in them: a defect is a
/// <see cref="MetricsResult.Problem"/>, never an exception, and the CSV is read in one streaming pass
/// whose memory grows with its columns, not its rows.
/// </summary>
public static class MetricsReader
{
    public const int MaxColumns = 512;
    public const int MaxNameLength = 256;
    public const int MaxRecordChars = 1 << 20;
    public const long MaxCsvBytes = 64L << 20;
    public const int MaxJsonBytes = 1 << 20;
    /// <summary>Nested objects in metrics.json are flattened with '/' down to this many names.</summary>
    public const int MaxJsonDepth = 4;

    private static readonly MetricsResult None = new(new Dictionary<string, double>(), 0, null);

    /// <summary>A file named metrics.csv, at any depth (Lightning writes lightning_logs/version_N/metrics.csv).</summary>
    public static bool IsCsvCandidate(string path) =>
        path.AsSpan(path.LastIndexOf('/') + 1).Equals("metrics.csv", StringComparison.OrdinalIgnoreCase);

    /// <summary>Exactly metrics.json, at the top of the artifacts.</summary>
    public static bool IsJsonCandidate(string path) => path == "metrics.json";

    /// <summary>
    /// Which file holds the metrics: metrics.json when there is one; otherwise the newest metrics.csv (the
    /// latest modified, then the higher N of a version_N folder, then the ordinal-last path), because
    /// Lightning writes a new version_N for every fit. Null when there is neither.
    /// </summary>
    public static string? ChooseSource(IEnumerable<(string Path, DateTimeOffset Modified)> files)
    {
        (string Path, DateTimeOffset Modified, long Version)? best = null;
        foreach (var (path, modified) in files)
        {
            if (IsJsonCandidate(path)) return path;
            if (!IsCsvCandidate(path)) continue;
            var version = VersionOf(path);
            if (best is not { } b || modified > b.Modified || (modified == b.Modified && (version > b.Version || (version == b.Version && string.CompareOrdinal(path, b.Path) > 0))))
            {
                best = (path, modified, version);
            }
        }
        return best?.Path;
    }

    /// <summary>The highest N of a version_N folder in the path, or -1.</summary>
    private static long VersionOf(string path)
    {
        var version = -1L;
        foreach (var segment in path.Split('/'))
        {
            if (segment.StartsWith("version_", StringComparison.Ordinal) && long.TryParse(segment.AsSpan(8), NumberStyles.None, CultureInfo.InvariantCulture, out var n)) version = Math.Max(version, n);
        }
        return version;
    }

    /// <summary>
    /// The metrics of an experiment's artifacts as its record keeps them: metrics.json when there is one
    /// that reads, else the newest metrics.csv (a malformed metrics.json passes to it). Null when there is
    /// neither. Each file that gives no metrics is named to <paramref name="warning"/>; the record then
    /// carries the problem and no values. Opening a file may throw (it is the caller's file).
    /// </summary>
    public static MetricsRecord? Read(IReadOnlyCollection<(string Path, DateTimeOffset Modified)> files, Func<string, Stream> open, Action<string> warning)
    {
        if (ChooseSource(files) is not { } source) return null;
        var result = Parse(source, open);
        if (result.Problem is not null && IsJsonCandidate(source) && ChooseSource(files.Where(f => !IsJsonCandidate(f.Path))) is { } csv)
        {
            warning(Warning(source, result.Problem));
            (source, result) = (csv, Parse(csv, open));
        }
        if (result.Problem is not null) warning(Warning(source, result.Problem));
        return new MetricsRecord { Source = source, Rows = result.Rows, Values = new(result.Values), Problem = result.Problem };
    }

    private static MetricsResult Parse(string path, Func<string, Stream> open)
    {
        using var s = open(path);
        return IsJsonCandidate(path) ? ReadJson(s) : ReadCsv(s);
    }

    private static string Warning(string path, string problem) =>
        $"'{path}' gives no metrics: {problem}. It is stored like any other artifact.";

    /// <summary>
    /// The last value of each column, each taken from the last row that has one: "the last row, with empty
    /// cells filled from the last row that has them". A header-only file has no values and no problem.
    /// </summary>
    public static MetricsResult ReadCsv(Stream s)
    {
        string[] columns = Array.Empty<string>();
        double[] latest = Array.Empty<double>();
        var rows = 0;
        var problem = Scan(s, names =>
        {
            columns = names;
            latest = new double[names.Length];
            Array.Fill(latest, double.NaN);
        }, cells =>
        {
            rows++;
            for (var c = 0; c < cells.Length; c++)
            {
                if (!double.IsNaN(cells[c])) latest[c] = cells[c];
            }
        });
        if (problem is not null) return None with { Problem = problem };
        var values = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
        for (var c = 0; c < columns.Length; c++)
        {
            if (!double.IsNaN(latest[c])) values[columns[c]] = latest[c];
        }
        return new MetricsResult(values, rows, null);
    }

    /// <summary>
    /// Every column as a curve against <c>step</c>, else <c>epoch</c>, else the row number (1, 2, ...): the
    /// rows where both cells are numbers. A column with more points than <paramref name="maxPointsPerColumn"/>
    /// is thinned to every k-th point, the first and the last always kept.
    /// </summary>
    public static MetricsSeries ReadSeries(Stream s, int maxPointsPerColumn = 2000)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPointsPerColumn, 2);
        string[] columns = Array.Empty<string>();
        Thinned?[] curves = Array.Empty<Thinned>();
        var x = -1;
        var rows = 0;
        var problem = Scan(s, names =>
        {
            columns = names;
            x = Array.FindIndex(names, n => n.Equals("step", StringComparison.OrdinalIgnoreCase));
            if (x < 0) x = Array.FindIndex(names, n => n.Equals("epoch", StringComparison.OrdinalIgnoreCase));
            curves = new Thinned?[names.Length];
        }, cells =>
        {
            rows++;
            var at = x < 0 ? rows : cells[x];
            if (double.IsNaN(at)) return;
            for (var c = 0; c < cells.Length; c++)
            {
                if (c != x && !double.IsNaN(cells[c])) (curves[c] ??= new Thinned(maxPointsPerColumn)).Add(at, cells[c]);
            }
        });
        if (problem is not null) return new MetricsSeries(null, Array.Empty<string>(), new Dictionary<string, double[][]>(), 0, false, problem);
        var names = new List<string>();
        var points = new Dictionary<string, double[][]>(StringComparer.OrdinalIgnoreCase);
        var downsampled = false;
        for (var c = 0; c < columns.Length; c++)
        {
            if (curves[c] is not { } curve) continue;
            names.Add(columns[c]);
            points[columns[c]] = curve.Finish(out var dropped);
            downsampled |= dropped;
        }
        return new MetricsSeries(x < 0 ? null : columns[x], names, points, rows, downsampled, null);
    }

    /// <summary>
    /// The root object's finite numbers, nested objects flattened with '/' (<c>{"val":{"loss":1}}</c> gives
    /// <c>val/loss</c>, as Lightning names them); strings, booleans, arrays and null are not metrics. It
    /// counts as one row.
    /// </summary>
    public static MetricsResult ReadJson(Stream s)
    {
        var bytes = new byte[MaxJsonBytes + 1];
        var length = 0;
        for (int n; length < bytes.Length && (n = s.Read(bytes, length, bytes.Length - length)) > 0;) length += n;
        if (length > MaxJsonBytes) return None with { Problem = "the file is larger than 1 MiB" };
        var json = bytes.AsMemory(0, length);
        if (json.Span.StartsWith(Encoding.UTF8.Preamble)) json = json[3..];
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return None with { Problem = $"its root is {Article(doc.RootElement.ValueKind)}, not an object of numbers" };
            var values = new Dictionary<string, double>(StringComparer.OrdinalIgnoreCase);
            Flatten(doc.RootElement, "", 1, values);
            return new MetricsResult(values, 1, null);
        }
        catch (JsonException ex)
        {
            return None with { Problem = $"it is not valid JSON ({ex.Message})" };
        }
        catch (InvalidOperationException)
        {
            return None with { Problem = "a name in it is not valid UTF-8" }; // the reader checks names only as they are read
        }
    }

    private static string Article(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Null => "null",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "a " + kind.ToString().ToLowerInvariant(),
    };

    private static void Flatten(JsonElement element, string prefix, int depth, Dictionary<string, double> values)
    {
        foreach (var p in element.EnumerateObject())
        {
            var name = prefix + p.Name;
            if (p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetDouble(out var v) && double.IsFinite(v))
            {
                if (p.Name.Length > 0 && name.Length <= MaxNameLength && values.Count < MaxColumns) values.TryAdd(name, v);
            }
            else if (p.Value.ValueKind == JsonValueKind.Object && depth < MaxJsonDepth)
            {
                Flatten(p.Value, name + "/", depth + 1, values);
            }
        }
    }

    /// <summary>
    /// One pass over a CSV: the kept column names once, then each data row's cells as numbers aligned to
    /// them (NaN where a cell is not a finite number; the array is reused). Returns the problem, or null.
    /// </summary>
    private static string? Scan(Stream s, Action<string[]> header, Action<double[]> row)
    {
        var records = new CsvRecords(s);
        try
        {
            if (!records.Next()) return null; // empty: no columns, no problem
            // Names trimmed; empty or too long ones, later duplicates (without case, as the metrics are
            // looked up) and columns past the limit are dropped.
            var map = new int[records.Count];
            var names = new List<string>();
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < map.Length; i++)
            {
                var name = records.Field(i).Trim().ToString();
                map[i] = name.Length is > 0 and <= MaxNameLength && names.Count < MaxColumns && seen.Add(name) ? names.Count : -1;
                if (map[i] >= 0) names.Add(name);
            }
            header(names.ToArray());
            var cells = new double[names.Count];
            while (records.Next())
            {
                Array.Fill(cells, double.NaN);
                // Cells past the header are ignored; missing ones count as empty.
                for (var i = 0; i < Math.Min(records.Count, map.Length); i++)
                {
                    if (map[i] >= 0 && double.TryParse(records.Field(i), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)) cells[map[i]] = v;
                }
                row(cells);
            }
            return null;
        }
        catch (MalformedCsv ex)
        {
            return ex.Message;
        }
    }

    private sealed class MalformedCsv(string message) : Exception(message);

    /// <summary>
    /// CSV records from strict UTF-8 (a BOM skipped): LF or CRLF ends a record, blank lines are skipped,
    /// <c>"..."</c> quotes a field (<c>""</c> inside is a quote). Each record's fields are kept in one
    /// reused buffer, so the memory is that of the longest record (at most 1 MiB).
    /// </summary>
    private sealed class CsvRecords(Stream stream)
    {
        private readonly Decoder _decoder = new UTF8Encoding(false, true).GetDecoder();
        private readonly byte[] _bytes = new byte[64 * 1024];
        private readonly char[] _chars = new char[64 * 1024 + 1];
        private int _pos, _end;
        private long _read;
        private bool _eof, _started;
        private char[] _record = new char[4096];
        private int _length;
        private readonly List<(int Start, int Length)> _fields = new();
        /// <summary>The line the reader is on, and the one the current record started on (for problems).</summary>
        private int _line = 1, _recordLine;

        public int Count => _fields.Count;

        public ReadOnlySpan<char> Field(int i) => _record.AsSpan(_fields[i].Start, _fields[i].Length);

        /// <summary>The next record that is not blank; false at the end.</summary>
        public bool Next()
        {
            while (true)
            {
                _fields.Clear();
                _length = 0;
                _recordLine = _line;
                if (Peek() < 0) return false;
                var quoted = ReadRecord();
                if (quoted || _fields.Count > 1 || !Field(0).IsWhiteSpace()) return true;
            }
        }

        /// <summary>Reads one record to its line end (or the file's); true when a field was quoted.</summary>
        private bool ReadRecord()
        {
            var quoted = false;
            while (true)
            {
                var start = _length;
                var c = Read();
                if (c == '"')
                {
                    quoted = true;
                    while (true)
                    {
                        c = Read();
                        if (c < 0) throw new MalformedCsv($"line {_recordLine}: a quoted field is not closed");
                        if (c == '"')
                        {
                            if (Peek() != '"') break;
                            Read();
                        }
                        Append((char)c);
                    }
                    _fields.Add((start, _length - start));
                    c = Read();
                    if (c == ',') continue;
                    if (IsEnd(c)) return quoted;
                    throw new MalformedCsv($"line {_line}: text after a closing quote");
                }
                for (; c != ',' && !IsEnd(c); c = Read()) Append((char)c);
                _fields.Add((start, _length - start));
                if (c != ',') return quoted;
            }
        }

        /// <summary>The end of a record: the file's end, LF, or the CR of a CRLF (whose LF it takes). A lone CR is text.</summary>
        private bool IsEnd(int c)
        {
            if (c is -1 or '\n') return true;
            if (c != '\r' || Peek() != '\n') return false;
            Read();
            return true;
        }

        private void Append(char c)
        {
            if (_length == _record.Length)
            {
                // A record this long is no metrics file (a binary file, most likely).
                if (_length >= MaxRecordChars) throw new MalformedCsv($"line {_recordLine}: a record is longer than 1 MiB");
                Array.Resize(ref _record, Math.Min(_record.Length * 2, MaxRecordChars));
            }
            _record[_length++] = c;
        }

        private int Read()
        {
            var c = Peek();
            if (c < 0) return c;
            _pos++;
            if (c == '\n') _line++;
            return c;
        }

        private int Peek()
        {
            while (_pos == _end)
            {
                if (_eof) return -1;
                var n = stream.Read(_bytes);
                _read += n;
                if (_read > MaxCsvBytes) throw new MalformedCsv("the file is larger than 64 MiB");
                _eof = n == 0;
                try
                {
                    _end = _decoder.GetChars(_bytes, 0, n, _chars, 0, flush: _eof);
                }
                catch (DecoderFallbackException)
                {
                    throw new MalformedCsv($"line {_line}: the text is not valid UTF-8");
                }
                _pos = 0;
                if (!_started && _end > 0)
                {
                    _started = true;
                    if (_chars[0] == '\uFEFF') _pos = 1;
                }
            }
            var c = _chars[_pos];
            if (c == '\0') throw new MalformedCsv($"line {_line}: a NUL character (this is not a text file)");
            return c;
        }
    }

    /// <summary>
    /// A curve thinned as it streams: it keeps every stride-th point, and when the kept ones would pass
    /// the limit it doubles the stride (every other kept point goes), so what is kept stays uniform. The
    /// last point is added at the end.
    /// </summary>
    private sealed class Thinned(int max)
    {
        private readonly List<double[]> _kept = new();
        private long _seen;
        private long _stride = 1;
        private double[]? _last;

        public void Add(double x, double y)
        {
            _last = new[] { x, y };
            var index = _seen++;
            if (index % _stride != 0) return;
            if (_kept.Count == max)
            {
                Halve();
                if (index % _stride != 0) return;
            }
            _kept.Add(_last);
        }

        /// <summary>The kept points, the last one among them: at most <c>max</c>.</summary>
        public double[][] Finish(out bool dropped)
        {
            if (_last is not null && !ReferenceEquals(_kept[^1], _last))
            {
                if (_kept.Count == max) Halve();
                _kept.Add(_last);
            }
            dropped = _kept.Count < _seen;
            return _kept.ToArray();
        }

        private void Halve()
        {
            _stride *= 2;
            var w = 0;
            for (var r = 0; r < _kept.Count; r += 2) _kept[w++] = _kept[r];
            _kept.RemoveRange(w, _kept.Count - w);
        }
    }
}
