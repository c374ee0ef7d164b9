using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;
using GridArtifacts.Model;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// Reads manifests as streams: <c>manifest.json</c> (one JSON object whose <c>artifacts</c> array may
/// hold a million entries) and its segments (one entry per line), entry by entry. What it holds is a
/// buffer as long as the longest entry (at most <see cref="StoreLayout.MaxRecordBytes"/>), never the
/// manifest, so a manifest's size costs time, not memory. Any defect is a DamagedRecord naming the key.
/// </summary>
public static class ManifestReader
{
    private const int FirstBuffer = 64 << 10;

    /// <summary>What one read of a manifest.json gave: its fields (Artifacts empty) and the SHA-256 of the bytes read.</summary>
    public readonly record struct Body(ManifestRecord Header, byte[] Sha256);

    /// <summary>
    /// Reads a manifest.json from <paramref name="body"/>: its fields go into the record returned, each
    /// entry of <c>artifacts</c> to <paramref name="entry"/> as it is read (given the fields read so
    /// far: a manifest written by this module has them all before its entries). With
    /// <paramref name="headerOnly"/>, reading stops at the entries once <c>through</c> is known.
    /// </summary>
    public static async Task<Body> ReadAsync(Stream body, string store, string key, Action<ManifestRecord, ManifestEntry>? entry, bool headerOnly, CancellationToken ct)
    {
        var parser = new ObjectParser(entry, headerOnly);
        var sha = await ParseAsync(body, store, key, parser, ct).ConfigureAwait(false);
        if (!parser.Stopped)
        {
            if (!parser.Ended) throw RecordJson.Damaged(store, key, "it ends before its JSON object does", null);
            if (parser.Header.Schema < 1 || parser.Header.Schema > StoreLayout.SchemaVersion)
            {
                throw RecordJson.Damaged(store, key, $"its schema version {parser.Header.Schema} is not one this module reads (1 to {StoreLayout.SchemaVersion}); update the module", null);
            }
        }
        return new Body(parser.Header, sha);
    }

    /// <summary>Reads a segment (one entry per line) from <paramref name="body"/>, each entry to <paramref name="entry"/>.</summary>
    public static Task ReadSegmentAsync(Stream body, string store, string key, Action<ManifestEntry> entry, CancellationToken ct) =>
        ParseAsync(body, store, key, new LineParser(entry), ct);

    /// <summary>The SHA-256 of a body, read to its end through one small buffer.</summary>
    public static async Task<byte[]> HashAsync(Stream body, CancellationToken ct) => await SHA256.HashDataAsync(body, ct).ConfigureAwait(false);

    private abstract class Parser
    {
        /// <summary>Takes what it can of <paramref name="data"/> and returns how many bytes it took; the rest comes again with more after it.</summary>
        public abstract int Take(ReadOnlySpan<byte> data, bool final);
        /// <summary>Nothing more is needed.</summary>
        public bool Stopped { get; protected set; }
    }

    /// <summary>
    /// Fills a buffer from the stream and hands it to the parser; what the parser leaves (part of an
    /// entry) moves to the front and the buffer grows only when one entry does not fit.
    /// </summary>
    private static async Task<byte[]> ParseAsync(Stream body, string store, string key, Parser parser, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(FirstBuffer);
        try
        {
            int filled = 0;
            var final = false;
            while (!final && !parser.Stopped)
            {
                if (filled == buffer.Length)
                {
                    // One entry (or field) larger than the buffer: it grows, up to the bound of a record.
                    if (buffer.Length >= StoreLayout.MaxRecordBytes)
                    {
                        throw RecordJson.Damaged(store, key, $"one of its entries is longer than {StoreLayout.MaxRecordBytes >> 20} MiB", null);
                    }
                    var larger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, StoreLayout.MaxRecordBytes));
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var n = await body.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
                if (n == 0) final = true;
                hash.AppendData(buffer, filled, n);
                filled += n;
                int taken;
                try { taken = parser.Take(buffer.AsSpan(0, filled), final); }
                catch (JsonException ex) { throw RecordJson.Damaged(store, key, $"it is not valid JSON ({ex.Message})", ex); }
                catch (InvalidOperationException ex) { throw RecordJson.Damaged(store, key, $"it is not a manifest ({ex.Message})", ex); }
                buffer.AsSpan(taken, filled - taken).CopyTo(buffer);
                filled -= taken;
            }
            return hash.GetHashAndReset();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>manifest.json: one object; its <c>artifacts</c> array is read one entry at a time, the other fields as they come.</summary>
    private sealed class ObjectParser(Action<ManifestRecord, ManifestEntry>? entry, bool headerOnly) : Parser
    {
        private enum Where { Start, Fields, Artifacts, End }
        private Where _where;
        private JsonReaderState _state = new(new JsonReaderOptions());
        public ManifestRecord Header { get; } = new();
        public bool Ended => _where == Where.End;

        public override int Take(ReadOnlySpan<byte> data, bool final)
        {
            var reader = new Utf8JsonReader(data, final, _state);
            var taken = 0;
            while (!Stopped)
            {
                // Each step reads a copy of the reader and keeps it only once a whole field or entry was there.
                var next = reader;
                if (!next.Read()) break;
                switch (_where)
                {
                    case Where.Start:
                        if (next.TokenType == JsonTokenType.Null) throw new JsonException("it is empty (null)");
                        if (next.TokenType != JsonTokenType.StartObject) throw new JsonException($"it starts with {next.TokenType}, not an object");
                        _where = Where.Fields;
                        break;
                    case Where.Fields:
                        if (next.TokenType == JsonTokenType.EndObject) { _where = Where.End; break; }
                        if (!Field(ref next)) return taken;
                        break;
                    case Where.Artifacts:
                        if (next.TokenType == JsonTokenType.EndArray) { _where = Where.Fields; break; }
                        if (next.TokenType == JsonTokenType.Null) break;
                        var whole = next;
                        if (!whole.TrySkip()) return taken;
                        var e = JsonSerializer.Deserialize(ref next, RecordJson.CompactEntry)!;
                        entry?.Invoke(Header, e);
                        break;
                    case Where.End:
                        throw new JsonException("more follows its object");
                }
                reader = next;
                _state = reader.CurrentState;
                taken = (int)reader.BytesConsumed;
            }
            return taken;
        }

        /// <summary>One field of the object, the reader on its name: false when its value is not all there yet.</summary>
        private bool Field(ref Utf8JsonReader reader)
        {
            if (reader.TokenType != JsonTokenType.PropertyName) throw new JsonException($"{reader.TokenType} where a field was expected");
            var name = reader.GetString();
            if (!reader.Read()) return false;
            if (name == "artifacts")
            {
                if (headerOnly && Header.Through is not null) { Stopped = true; return true; }
                if (reader.TokenType == JsonTokenType.StartArray) _where = Where.Artifacts;
                else if (reader.TokenType != JsonTokenType.Null) throw new JsonException("'artifacts' is not an array");
                return true;
            }
            var whole = reader;
            if (!whole.TrySkip()) return false;
            switch (name)
            {
                case "schema": Header.Schema = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.Int32); break;
                case "run": Header.Run = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.String) ?? ""; break;
                case "experiment": Header.Experiment = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.String) ?? ""; break;
                case "sealed": Header.Sealed = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.Boolean); break;
                case "updated": Header.Updated = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.DateTimeOffset); break;
                case "through": Header.Through = JsonSerializer.Deserialize(ref reader, RecordJsonContext.Default.NullableInt64); break;
                default: reader.TrySkip(); break; // a field a later version added (all there: checked above)
            }
            return true;
        }
    }

    /// <summary>A segment: one entry per line; a last line without its newline is read at the end.</summary>
    private sealed class LineParser(Action<ManifestEntry> entry) : Parser
    {
        public override int Take(ReadOnlySpan<byte> data, bool final)
        {
            var taken = 0;
            while (taken < data.Length)
            {
                var rest = data[taken..];
                var end = rest.IndexOf((byte)'\n');
                if (end < 0 && !final) break;
                var line = end < 0 ? rest : rest[..end];
                taken += end < 0 ? rest.Length : end + 1;
                if (line.Trim(" \t\r"u8).IsEmpty) continue;
                if (JsonSerializer.Deserialize(line, RecordJson.CompactEntry) is { } e) entry(e);
            }
            return taken;
        }
    }
}
