using System.Globalization;
using System.Text;
using GridArtifacts.Core.Metrics;
using Xunit;

namespace GridArtifacts.Tests;

/// <summary>The metrics parser on files as scripts write them, and as they should not.</summary>
public sealed class MetricsReaderTests
{
    private static MemoryStream Text(string text) => new(Encoding.UTF8.GetBytes(text));

    private static MetricsResult Csv(string text) => MetricsReader.ReadCsv(Text(text));

    private static MetricsResult Json(string text) => MetricsReader.ReadJson(Text(text));

    private static void Values(MetricsResult r, params (string Name, double Value)[] expected)
    {
        Assert.Null(r.Problem);
        Assert.Equal(expected.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray(),
            r.Values.Select(kv => (kv.Key, kv.Value)).OrderBy(e => e.Key, StringComparer.Ordinal).ToArray());
    }

    private static void Malformed(MetricsResult r, string problem)
    {
        Assert.Empty(r.Values);
        Assert.NotNull(r.Problem);
        Assert.Contains(problem, r.Problem);
    }

    /// <summary>What CSVLogger writes for a fit that validates once an epoch: val_* only in the epoch rows.</summary>
    private const string Lightning = "epoch,step,train_loss,val_acc,val_loss\r\n" +
        "0,49,0.91,,\r\n" +
        "0,99,0.82,,\r\n" +
        "0,99,,0.5,0.7\r\n" +
        "1,149,0.61,,\r\n" +
        "1,199,0.52,,\r\n" +
        "1,199,,0.75,0.4\r\n" +
        "2,249,0.33,,\r\n";

    [Fact]
    public void A_Lightning_file_gives_the_last_row_with_empty_cells_filled_from_the_last_row_that_has_them()
    {
        var r = Csv(Lightning);
        Values(r, ("epoch", 2), ("step", 249), ("train_loss", 0.33), ("val_acc", 0.75), ("val_loss", 0.4));
        Assert.Equal(7, r.Rows);
        Assert.Equal(0.4, r.Values["VAL_LOSS"]); // looked up without case, as $_.Metrics['val_loss'] is
    }

    [Fact]
    public void Empty_and_missing_cells_are_not_values()
    {
        var r = Csv("a,b,c\n1,,3\n,2,\n,,\n4\n");
        Values(r, ("a", 4), ("b", 2), ("c", 3));
        Assert.Equal(4, r.Rows);
    }

    [Fact]
    public void Header_columns_never_filled_are_absent_and_cells_past_the_header_are_ignored()
    {
        var r = Csv("loss,never,also_never\n0.5,,,9,9,9\n0.25,,,7\n");
        Values(r, ("loss", 0.25));
    }

    [Fact]
    public void A_header_only_file_or_an_empty_one_gives_no_values_and_no_problem()
    {
        foreach (var text in new[] { "epoch,step,val_loss\n", "epoch,step,val_loss", "", "\n\n", "\uFEFF" })
        {
            var r = Csv(text);
            Assert.Empty(r.Values);
            Assert.Null(r.Problem);
            Assert.Equal(0, r.Rows);
        }
    }

    [Fact]
    public void An_unclosed_quote_is_malformed_and_names_its_line()
    {
        Malformed(Csv("a,b\n1,2\n3,\"4\n5,6\n"), "line 3: a quoted field is not closed");
    }

    [Fact]
    public void Text_after_a_closing_quote_is_malformed()
    {
        Malformed(Csv("a,b\n1,\"2\"x\n"), "line 2: text after a closing quote");
    }

    [Fact]
    public void Invalid_UTF8_is_malformed_wherever_it_is()
    {
        var head = Encoding.UTF8.GetBytes("a,b\n1,2\n3,");
        foreach (var bad in new[] { new byte[] { 0xFF }, new byte[] { 0xC3 }, new byte[] { 0xED, 0xA0, 0x80 } }) // stray byte, cut sequence (at the end), surrogate
        {
            Malformed(MetricsReader.ReadCsv(new MemoryStream([.. head, .. bad, .. "4\n"u8])), "not valid UTF-8");
            Malformed(MetricsReader.ReadCsv(new MemoryStream([.. head, .. bad])), "not valid UTF-8");
        }
        // Far into the file, past the first buffer.
        var far = Encoding.UTF8.GetBytes("a\n" + string.Concat(Enumerable.Repeat("1\n", 100_000)));
        Malformed(MetricsReader.ReadCsv(new MemoryStream([.. far, 0xFE, .. "\n"u8])), "not valid UTF-8");
    }

    [Fact]
    public void A_NUL_makes_the_file_malformed()
    {
        Malformed(Csv("a,b\n1,2\0\n"), "line 2: a NUL character");
    }

    [Fact]
    public void A_2_MiB_line_is_malformed_but_a_line_just_under_1_MiB_is_read()
    {
        Malformed(Csv("a,b\n" + new string('x', 2 << 20) + "\n"), "line 2: a record is longer than 1 MiB");
        Malformed(Csv("a,b\n1,\"" + new string('x', 2 << 20) + "\"\n"), "line 2: a record is longer than 1 MiB");
        var r = Csv("a,b\n1," + new string(' ', (1 << 20) - 10) + "2\n");
        Values(r, ("a", 1), ("b", 2));
    }

    [Fact]
    public void A_file_over_64_MiB_is_malformed()
    {
        // Rows of 4 KiB (the second cell padded with spaces, which are trimmed): 64 MiB in 16,384 rows, not 16 million;
        // with the 4-byte header the file is 4 bytes over the limit.
        var row = Encoding.ASCII.GetBytes("1," + new string(' ', 4092) + "2\n");
        Assert.Equal(4096, row.Length);
        Assert.Equal(0, MetricsReader.MaxCsvBytes % row.Length);
        var r = MetricsReader.ReadCsv(new RepeatedStream("a,b\n"u8.ToArray(), row, MetricsReader.MaxCsvBytes / row.Length));
        Malformed(r, "larger than 64 MiB");
    }

    [Fact]
    public void CRLF_and_a_BOM_read_as_LF_without_one()
    {
        var plain = Csv("epoch,val_loss\n1,0.5\n2,0.25\n");
        var windows = MetricsReader.ReadCsv(new MemoryStream([.. Encoding.UTF8.Preamble, .. "epoch,val_loss\r\n1,0.5\r\n\r\n2,0.25\r\n"u8]));
        Values(plain, ("epoch", 2), ("val_loss", 0.25));
        Values(windows, ("epoch", 2), ("val_loss", 0.25)); // the first name is "epoch", not "\uFEFFepoch"
        Assert.Equal(plain.Rows, windows.Rows);
        // A lone CR is text, not a line end: the header is a, "b\r1" and 2.
        Values(Csv("a,b\r1,2\n3,4\n"), ("a", 3), ("b\r1", 4));
    }

    [Fact]
    public void NaN_infinity_and_text_cells_are_not_values_and_never_an_error()
    {
        var r = Csv("loss,acc,note\n0.5,0.9,ok\nnan,NaN,<script>alert(1)</script>\ninf,-Infinity,\n1e400,abc,\"1,5\"\n");
        Values(r, ("loss", 0.5), ("acc", 0.9));
    }

    [Fact]
    public void Numbers_are_read_invariantly_with_spaces_trimmed()
    {
        Values(Csv("a,b,c,d\n 1.5 ,-2e-3,+7,0x10\n"), ("a", 1.5), ("b", -0.002), ("c", 7));
        Values(Csv("a\n\"1,5\"\n"));
    }

    [Fact]
    public void Quoted_fields_hold_commas_quotes_and_line_ends()
    {
        var r = Csv("\"val,loss\",\"say \"\"hi\"\"\",\"multi\nline\"\n\"0.5\",2,3\n");
        Values(r, ("val,loss", 0.5), ("say \"hi\"", 2), ("multi\nline", 3));
        Assert.Equal(1, r.Rows);
    }

    [Fact]
    public void Header_names_are_trimmed_empty_ones_dropped_and_a_duplicate_keeps_the_first()
    {
        var r = Csv(" loss ,,Loss,acc,loss\n1,2,3,4,5\n");
        Values(r, ("loss", 1), ("acc", 4));
    }

    [Fact]
    public void More_than_512_columns_or_a_name_over_256_characters_drops_the_extra()
    {
        var names = Enumerable.Range(0, 600).Select(i => $"m{i}").ToList();
        names.Insert(3, new string('n', 257));
        var r = Csv(string.Join(',', names) + "\n" + string.Join(',', names.Select((_, i) => i.ToString())) + "\n");
        Assert.Null(r.Problem);
        Assert.Equal(MetricsReader.MaxColumns, r.Values.Count);
        Assert.False(r.Values.ContainsKey(new string('n', 257)));
        Assert.Equal(4, r.Values["m3"]); // its cell moved one past the long name's
        Assert.Equal(512, r.Values["m511"]);
        Assert.False(r.Values.ContainsKey("m512"));
    }

    [Fact]
    public void Memory_grows_with_the_columns_not_the_rows()
    {
        // About 30 MB of rows: the pass allocates its buffers once, nothing per row.
        var stream = new RepeatedStream("epoch,step,train_loss,val_loss\n"u8.ToArray(), "3,1234,0.123456,\n"u8.ToArray(), 1_750_000);
        var before = GC.GetAllocatedBytesForCurrentThread();
        var r = MetricsReader.ReadCsv(stream);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Values(r, ("epoch", 3), ("step", 1234), ("train_loss", 0.123456));
        Assert.Equal(1_750_000, r.Rows);
        Assert.True(allocated < 1_000_000, $"{allocated} bytes allocated for {r.Rows} rows");
    }

    [Fact]
    public void Json_flat_gives_its_finite_numbers_and_ignores_the_rest()
    {
        var r = Json("""{"val_loss": 0.25, "epoch": 9, "name": "resnet", "ok": true, "none": null, "list": [1, 2], "big": 1e400, "": 3}""");
        Values(r, ("val_loss", 0.25), ("epoch", 9));
        Assert.Equal(1, r.Rows);
    }

    [Fact]
    public void Json_nested_is_flattened_with_slashes_down_to_four_names()
    {
        var r = MetricsReader.ReadJson(new MemoryStream([.. Encoding.UTF8.Preamble, .. """{"val": {"loss": 1, "acc": {"top1": 0.5, "top5": 0.9}}, "a": {"b": {"c": {"d": 4, "e": {"f": 5}}}}, "Val": {"loss": 7}}"""u8]));
        Values(r, ("val/loss", 1), ("val/acc/top1", 0.5), ("val/acc/top5", 0.9), ("a/b/c/d", 4));
    }

    [Fact]
    public void Json_with_a_bad_root_or_bad_text_is_malformed()
    {
        Malformed(Json("[1, 2]"), "its root is an array");
        Malformed(Json("0.5"), "its root is a number");
        Malformed(Json("\"loss\""), "its root is a string");
        Malformed(Json("null"), "its root is null");
        Malformed(Json("{\"loss\": 0.5,"), "not valid JSON");
        Malformed(Json(""), "not valid JSON");
        Malformed(MetricsReader.ReadJson(new MemoryStream([.. "{\""u8, 0xFF, .. "\": 1}"u8])), "UTF-8");
        Malformed(Json("{\"pad\": \"" + new string('x', 1 << 20) + "\"}"), "larger than 1 MiB");
    }

    [Fact]
    public void ChooseSource_takes_metrics_json_then_the_newest_csv()
    {
        var t = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var v0 = ("lightning_logs/version_0/metrics.csv", t);
        var v1 = ("lightning_logs/version_1/metrics.csv", t);
        var v10 = ("lightning_logs/version_10/metrics.csv", t);
        Assert.Equal(v1.Item1, MetricsReader.ChooseSource([v0, v1]));
        Assert.Equal(v1.Item1, MetricsReader.ChooseSource([v1, v0]));
        Assert.Equal(v10.Item1, MetricsReader.ChooseSource([v1, v10, v0])); // by number, not text
        Assert.Equal(v0.Item1, MetricsReader.ChooseSource([(v0.Item1, t.AddSeconds(1)), v1])); // the latest written wins first
        Assert.Equal("metrics.json", MetricsReader.ChooseSource([v1, ("metrics.json", t.AddDays(-1)), v0]));
        Assert.Equal("b/METRICS.csv", MetricsReader.ChooseSource([("a/metrics.csv", t), ("b/METRICS.csv", t)])); // then the ordinal-last path
        Assert.Equal("metrics.csv", MetricsReader.ChooseSource([("metrics.csv", t), ("sub/metrics.json", t.AddDays(1)), ("metrics.csv.bak", t.AddDays(1))]));
        Assert.Null(MetricsReader.ChooseSource([("sub/metrics.json", t), ("notmetrics.csv", t), ("Metrics.json", t)]));
    }

    [Fact]
    public void Read_passes_from_a_malformed_metrics_json_to_the_csv_and_says_so()
    {
        var t = DateTimeOffset.UnixEpoch;
        var files = new Dictionary<string, string> { ["metrics.json"] = "[1]", ["logs/version_0/metrics.csv"] = "loss\n0.5\n" };
        var warnings = new List<string>();
        var m = MetricsReader.Read(files.Keys.Select(p => (p, t)).ToList(), p => Text(files[p]), warnings.Add)!;
        Assert.Equal("logs/version_0/metrics.csv", m.Source);
        Assert.Null(m.Problem);
        Assert.Equal(0.5, m.Values["loss"]);
        Assert.Contains("'metrics.json' gives no metrics: its root is an array", Assert.Single(warnings));

        files["logs/version_0/metrics.csv"] = "loss\n\"0.5\n";
        warnings.Clear();
        m = MetricsReader.Read(files.Keys.Select(p => (p, t)).ToList(), p => Text(files[p]), warnings.Add)!;
        Assert.Equal("logs/version_0/metrics.csv", m.Source);
        Assert.Empty(m.Values);
        Assert.Contains("not closed", m.Problem);
        Assert.Equal(2, warnings.Count);

        Assert.Null(MetricsReader.Read([("model.ckpt", t)], _ => throw new InvalidOperationException("nothing is opened"), warnings.Add));
    }

    [Fact]
    public void ReadSeries_plots_each_column_against_step()
    {
        var s = MetricsReader.ReadSeries(Text(Lightning));
        Assert.Null(s.Problem);
        Assert.Equal("step", s.X);
        Assert.Equal(new[] { "epoch", "train_loss", "val_acc", "val_loss" }, s.Columns);
        Assert.Equal(7, s.Rows);
        Assert.False(s.Downsampled);
        Assert.Equal(new[] { new[] { 99.0, 0.7 }, new[] { 199.0, 0.4 } }, s.Points["val_loss"]);
        Assert.Equal(new[] { 49.0, 99, 149, 199, 249 }, s.Points["train_loss"].Select(p => p[0]));
        Assert.Equal(new[] { 0.91, 0.82, 0.61, 0.52, 0.33 }, s.Points["train_loss"].Select(p => p[1]));
    }

    [Fact]
    public void ReadSeries_falls_back_to_epoch_then_the_row_number_and_skips_rows_without_an_x()
    {
        var byEpoch = MetricsReader.ReadSeries(Text("Epoch,loss,empty\n1,0.5,\n,0.4,\n3,0.3,\n"));
        Assert.Equal("Epoch", byEpoch.X);
        Assert.Equal(new[] { "loss" }, byEpoch.Columns);
        Assert.Equal(new[] { new[] { 1.0, 0.5 }, new[] { 3.0, 0.3 } }, byEpoch.Points["loss"]);

        var byRow = MetricsReader.ReadSeries(Text("loss,acc\n0.5,\n\n0.4,0.1\nx,0.2\n"));
        Assert.Null(byRow.X);
        Assert.Equal(new[] { new[] { 1.0, 0.5 }, new[] { 2.0, 0.4 } }, byRow.Points["loss"]);
        Assert.Equal(new[] { new[] { 2.0, 0.1 }, new[] { 3.0, 0.2 } }, byRow.Points["acc"]);
    }

    [Theory]
    [InlineData(10_000, 100)]
    [InlineData(2_001, 2000)]
    [InlineData(12_345, 2000)]
    [InlineData(1_000, 2)]
    public void ReadSeries_thins_long_curves_uniformly_keeping_the_first_and_last(int rows, int max)
    {
        var text = new StringBuilder("step,loss,sparse\n");
        for (var i = 0; i < rows; i++) text.Append(CultureInfo.InvariantCulture, $"{i * 10},{i * 0.5},{(i % 3 == 0 ? "1" : "")}\n");
        var s = MetricsReader.ReadSeries(Text(text.ToString()), max);
        Assert.True(s.Downsampled);
        Assert.Equal(rows, s.Rows);
        var loss = s.Points["loss"];
        Assert.InRange(loss.Length, max / 2, max);
        Assert.Equal(new[] { 0.0, 0 }, loss[0]);
        Assert.Equal(new[] { (rows - 1) * 10.0, (rows - 1) * 0.5 }, loss[^1]);
        Assert.All(loss, p => Assert.Equal(p[0] / 20, p[1])); // each point is a real row
        // Uniform: every gap but the last (to the kept last point) is the same.
        var gaps = loss.Zip(loss.Skip(1), (a, b) => b[0] - a[0]).ToList();
        Assert.True(gaps.SkipLast(1).Distinct().Count() <= 1);
        Assert.True(gaps[^1] <= gaps[0]);
        Assert.InRange(s.Points["sparse"].Length, 2, max);
    }

    [Fact]
    public void ReadSeries_keeps_every_point_up_to_the_limit_and_reports_problems()
    {
        var text = "step,loss\n" + string.Concat(Enumerable.Range(0, 50).Select(i => $"{i},{i}\n"));
        var s = MetricsReader.ReadSeries(Text(text), 50);
        Assert.False(s.Downsampled);
        Assert.Equal(50, s.Points["loss"].Length);

        var bad = MetricsReader.ReadSeries(Text("step,loss\n1,\"2\n"));
        Assert.Contains("not closed", bad.Problem);
        Assert.Empty(bad.Columns);
        Assert.Empty(bad.Points);
        Assert.Throws<ArgumentOutOfRangeException>(() => MetricsReader.ReadSeries(Text(text), 1));
    }

    /// <summary>A header, then one row again and again: a large file with nothing held in memory.</summary>
    private sealed class RepeatedStream(byte[] header, byte[] row, long rows) : Stream
    {
        private long _position;
        private readonly long _length = header.Length + row.Length * rows;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = 0;
            while (n < buffer.Length && _position < _length)
            {
                var (source, at) = _position < header.Length ? (header, _position) : (row, (_position - header.Length) % row.Length);
                var take = (int)Math.Min(buffer.Length - n, source.Length - at);
                source.AsSpan((int)at, take).CopyTo(buffer[n..]);
                n += take;
                _position += take;
            }
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
