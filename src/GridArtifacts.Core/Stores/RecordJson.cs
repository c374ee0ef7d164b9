using GridArtifacts.Model;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace GridArtifacts.Core.Stores;

/// <summary>
/// How records are written and read: camelCase JSON, enums as strings, nulls left out, indented for
/// people who open the files. Through <see cref="RecordJsonContext"/> (source-generated, no
/// reflection): the bytes earlier releases wrote, and in a Native AOT build too.
/// </summary>
public static class RecordJson
{
    /// <summary>The records' options; they resolve only the types <see cref="RecordJsonContext"/> lists.</summary>
    public static JsonSerializerOptions Options => RecordJsonContext.Default.Options;

    /// <summary>Manifests and their segments: one entry per file, so not indented.</summary>
    public static readonly JsonSerializerOptions Compact = new(RecordJsonContext.Default.Options) { WriteIndented = false };

    /// <summary>A manifest entry on one line (segments, the agent's journal, the entries of a manifest).</summary>
    internal static readonly JsonTypeInfo<ManifestEntry> CompactEntry = Info<ManifestEntry>(Compact);

    public static byte[] Serialize<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Info<T>(value is ManifestRecord ? Compact : Options));

    /// <summary>The type's contract under <paramref name="options"/>: one of the types <see cref="RecordJsonContext"/> lists.</summary>
    private static JsonTypeInfo<T> Info<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));

    /// <summary>Parses a record; any defect (bad JSON, missing fields, a newer schema) is a DamagedRecord error naming the key.</summary>
    public static T Deserialize<T>(byte[] bytes, string storeLocation, string key) where T : class
    {
        T? value;
        try
        {
            value = JsonSerializer.Deserialize(bytes, Info<T>(Options));
        }
        catch (JsonException ex)
        {
            throw Damaged(storeLocation, key, $"it is not valid JSON ({ex.Message})", ex);
        }
        if (value is null) throw Damaged(storeLocation, key, "it is empty", null);
        var schema = value switch
        {
            RunRecord r => r.Schema,
            ExperimentRecord e => e.Schema,
            ManifestRecord m => m.Schema,
            UploadJournalRecord u => u.Schema,
            _ => StoreLayout.SchemaVersion,
        };
        if (schema < 1 || schema > StoreLayout.SchemaVersion)
        {
            throw Damaged(storeLocation, key, $"its schema version {schema} is not one this module reads (1 to {StoreLayout.SchemaVersion}); update the module", null);
        }
        return value;
    }

    internal static GridException Damaged(string store, string key, string why, Exception? inner) =>
        new(GridErrorKind.DamagedRecord, "DamagedRecord", $"The record '{key}' in store '{store}' is damaged: {why}. The other records are still read.", key, inner);

    /// <summary>A record longer than <see cref="StoreLayout.MaxRecordBytes"/>: damaged, whatever it holds.</summary>
    public static GridException TooLarge(string store, string key, long? length) =>
        Damaged(store, key, (length is { } n ? $"it is {n:N0} bytes" : "it is longer") +
            $", more than the {StoreLayout.MaxRecordBytes >> 20} MiB a record may have, so it was not read", null);

    /// <summary>
    /// A record's body, read to its end but never past <see cref="StoreLayout.MaxRecordBytes"/>: the
    /// buffer grows with what arrives, not with the length the store declares, so a record claiming
    /// (or holding) gigabytes costs at most the bound. Too long is <see cref="TooLarge"/>.
    /// </summary>
    public static async Task<byte[]> ReadBoundedAsync(Stream body, long? declaredLength, string store, string key, CancellationToken ct)
    {
        if (declaredLength > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, declaredLength);
        var buffer = new byte[(int)Math.Clamp(declaredLength ?? 4096, 256, StoreLayout.MaxRecordBytes) + 1];
        var filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (buffer.Length > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, null);
                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, StoreLayout.MaxRecordBytes + 1));
            }
            var n = await body.ReadAsync(buffer.AsMemory(filled), ct).ConfigureAwait(false);
            if (n == 0) break;
            filled += n;
        }
        if (filled > StoreLayout.MaxRecordBytes) throw TooLarge(store, key, null);
        return filled == buffer.Length ? buffer : buffer[..filled];
    }
}

/// <summary>
/// The records' JSON contract, generated at build time: the options every release has written records
/// with (camelCase, indented, nulls left out, enums as their names, the default escaping).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    WriteIndented = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(RunRecord))]
[JsonSerializable(typeof(ExperimentRecord))]
[JsonSerializable(typeof(ManifestRecord))]
[JsonSerializable(typeof(ManifestEntry))]
[JsonSerializable(typeof(UploadJournalRecord))]
// The store settings file ({"store": location}) and a manifest's header, field by field.
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(DateTimeOffset))]
[JsonSerializable(typeof(long?))]
internal sealed partial class RecordJsonContext : JsonSerializerContext;
