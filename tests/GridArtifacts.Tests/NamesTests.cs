using System.Text.RegularExpressions;
using FsCheck;
using FsCheck.Fluent;
using GridArtifacts.Core;
using GridArtifacts.Core.Stores;
using GridArtifacts.Model;
using Xunit;

namespace GridArtifacts.Tests;

public class NamesTests
{
    [Theory]
    [InlineData("adorable-mouse-123", true)]
    [InlineData("a", true)]
    [InlineData("run1", true)]
    [InlineData("Upper", false)]
    [InlineData("-lead", false)]
    [InlineData("trail-", false)]
    [InlineData("under_score", false)]
    [InlineData("run-exp3", false)] // reserved: names an experiment
    [InlineData("", false)]
    [InlineData("../x", false)]
    [InlineData("a/b", false)]
    public void Run_names(string name, bool valid) => Assert.Equal(valid, GridNames.IsValidRunName(name));

    [Theory]
    [InlineData("keep", "keep")]
    [InlineData(" Keep ", "keep")]
    [InlineData("lr-0.001", "lr-0.001")]
    [InlineData("v1_best", "v1_best")]
    [InlineData("9lives", "9lives")]
    [InlineData("a.", null)]          // Windows drops a trailing dot from a file name
    [InlineData("-lead", null)]
    [InlineData("_lead", null)]
    [InlineData(".hidden", null)]
    [InlineData("a:b", null)]
    [InlineData("a/b", null)]
    [InlineData("a~b", null)]         // the index's separator
    [InlineData("ke*", null)]         // a tag never holds a wildcard
    [InlineData("a b", null)]
    [InlineData("é", null)]
    [InlineData("", null)]
    public void Tags_are_lower_cased_and_checked(string given, string? stored)
    {
        if (stored is null) Assert.Equal("InvalidTag", Assert.Throws<GridException>(() => GridNames.CheckTag(given)).ErrorId);
        else Assert.Equal(stored, GridNames.CheckTag(given));
    }

    [Fact]
    public void Tags_are_at_most_64_characters_and_64_to_a_run()
    {
        Assert.True(GridNames.IsValidTag(new string('a', 64)));
        Assert.False(GridNames.IsValidTag(new string('a', 65)));
        Assert.Equal(new[] { "a", "b" }, GridNames.CheckTags(new[] { "a", "B", "a" }));
        Assert.Equal("TooManyTags", Assert.Throws<GridException>(() => GridNames.CheckTags(Enumerable.Range(0, 65).Select(i => $"t{i}"))).ErrorId);
    }

    [Fact]
    public void Any_valid_tag_makes_keys_that_read_back_as_that_tag_and_as_no_other_kind()
    {
        var first = Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789".Select(c => c.ToString()).ToArray());
        var rest = Gen.Elements("abcdefghijklmnopqrstuvwxyz0123456789-_.".Select(c => c.ToString()).ToArray());
        var tag = Gen.Choose(0, 63).SelectMany(n => Gen.ArrayOf(rest, n)).SelectMany(r => first.Select(f => f + string.Concat(r)))
            .Where(t => !t.EndsWith('.'));
        Prop.ForAll(tag.ToArbitrary(), t =>
        {
            Assert.True(GridNames.IsValidTag(t));
            var onRun = Assert.IsType<CatalogIndex.TagEntry>(CatalogIndex.Parse(CatalogIndex.RunTagKey("my-run", t)));
            Assert.Equal(("my-run", (string?)null, t), (onRun.Run, onRun.Experiment, onRun.Tag));
            var onExp = Assert.IsType<CatalogIndex.TagEntry>(CatalogIndex.Parse(CatalogIndex.ExperimentTagKey("my-run", "exp12", t)));
            Assert.Equal(("my-run", (string?)"exp12", t), (onExp.Run, onExp.Experiment, onExp.Tag));
        }).QuickCheckThrowOnFailure();
        // Keys this version does not know are passed over, never read as tags.
        Assert.Null(CatalogIndex.Parse("runs/my-run~tag~Keep"));
        Assert.Null(CatalogIndex.Parse("runs/my-run~tag~%4b"));
        Assert.Null(CatalogIndex.Parse("runs/my-run~exp0~tag~a."));
        Assert.Null(CatalogIndex.Parse("runs/my-run~expx~tag~keep"));
    }

    [Fact]
    public void Run_names_are_at_most_63_characters()
    {
        Assert.True(GridNames.IsValidRunName(new string('a', 63)));
        Assert.False(GridNames.IsValidRunName(new string('a', 64)));
    }

    [Theory]
    [InlineData("exp0", true)]
    [InlineData("exp12", true)]
    [InlineData("exp01", false)]
    [InlineData("exp", false)]
    [InlineData("Exp1", false)]
    [InlineData("exp-1", false)]
    public void Experiment_names(string name, bool valid) => Assert.Equal(valid, GridNames.IsValidExperimentName(name));

    [Fact]
    public void Name_checks_agree_with_the_naming_rules_written_as_patterns()
    {
        // The rules as patterns (\z: a trailing newline is not part of a name); the checks are written
        // by hand because a listing checks one name per key.
        var run = new Regex(@"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\z", RegexOptions.CultureInvariant);
        var experimentSuffix = new Regex(@"^.+-exp[0-9]+\z", RegexOptions.CultureInvariant);
        var experiment = new Regex(@"^exp(?:0|[1-9][0-9]{0,5})\z", RegexOptions.CultureInvariant);
        var character = Gen.Elements('a', 'z', 'e', 'x', 'p', '0', '1', '9', '-', 'A', '_', '/', '~', '\n', 'é');
        var name = Gen.OneOf(
            Gen.Choose(0, 70).SelectMany(n => Gen.ArrayOf(character, n)).Select(c => new string(c)),
            Gen.Choose(0, 8).SelectMany(n => Gen.ArrayOf(character, n)).Select(c => "run-exp" + new string(c)),
            Gen.Choose(0, 8).SelectMany(n => Gen.ArrayOf(character, n)).Select(c => "exp" + new string(c)));
        Prop.ForAll(name.ToArbitrary(), s =>
        {
            Assert.Equal(run.IsMatch(s) && !experimentSuffix.IsMatch(s), GridNames.IsValidRunName(s));
            Assert.Equal(experiment.IsMatch(s), GridNames.IsValidExperimentName(s));
        }).QuickCheckThrowOnFailure();
    }

    [Theory]
    [InlineData("my-run", "my-run", null)]
    [InlineData("my-run-exp3", "my-run", "exp3")]
    [InlineData("my-*-exp1", "my-*", "exp1")]
    [InlineData("exp-run", "exp-run", null)]
    public void Targets_split_into_run_and_experiment(string target, string run, string? exp)
    {
        var (r, e) = GridNames.SplitTarget(target);
        Assert.Equal(run, r);
        Assert.Equal(exp, e);
    }

    [Fact]
    public void Generated_names_are_valid()
    {
        var rnd = new Random(1);
        for (var i = 0; i < 200; i++) Assert.True(GridNames.IsValidRunName(GridNames.NewRunName(rnd)));
    }

    public static TheoryData<string> Traversals => new()
    {
        "../escape.txt",
        "../../etc/passwd",
        "a/../../escape.txt",
        "a/../b",
        "..",
        ".",
        "./a",
        "/etc/passwd",
        "//server/share/x",
        "C:/Windows/x.dll",
        "c:escape.txt",
        "a\\..\\..\\escape.txt",
        "..\\escape.txt",
        "\\\\server\\share",
        "a//b",
        "a/",
        "",
        "nul\0byte",
        "line\nbreak",
        "/../x",
        "//../x",
        "../dest-evil/x",          // a sibling folder whose name starts with the destination's
        "../../../dest-evil/x",
        "tab\there",
        "del\u007fchar",
        new string('n', 901),      // over 900 UTF-8 bytes
        new string('é', 451),      // 902 UTF-8 bytes in 451 characters
    };

    [Theory]
    [MemberData(nameof(Traversals))]
    public void Every_traversal_is_refused_before_anything_is_written(string path)
    {
        using var temp = new TempDir();
        var root = temp.Sub("dest");
        var ex = Assert.Throws<GridException>(() => GridNames.LocalPathFor(root, "run", "exp0", path));
        Assert.Equal(GridErrorKind.UnsafePath, ex.Kind);
        Assert.False(Directory.Exists(root));
        Assert.Empty(Directory.EnumerateFileSystemEntries(temp.Path));
    }

    [Theory]
    [InlineData("../other", "exp0")]
    [InlineData("run", "../exp0")]
    [InlineData("run", "exp0/..")]
    public void Bad_run_or_experiment_parts_are_refused(string run, string exp)
    {
        var ex = Assert.Throws<GridException>(() => GridNames.LocalPathFor("/tmp/dest", run, exp, "a.txt"));
        Assert.Equal(GridErrorKind.UnsafePath, ex.Kind);
    }

    [Theory]
    [InlineData("model.pt")]
    [InlineData("ckpt/epoch=3-step=100.ckpt")]
    [InlineData("naïve/日本語 ファイル.txt")]
    [InlineData("..hidden/..x")]
    [InlineData("a..b")]
    [InlineData("v1..v2/model..final.ckpt")]
    [InlineData(".hidden")]
    public void Ordinary_and_unicode_paths_land_under_the_destination(string path)
    {
        var root = Path.GetFullPath("/tmp/dest");
        var local = GridNames.LocalPathFor(root, "run", "exp0", path);
        Assert.StartsWith(Path.Combine(root, "run", "exp0") + Path.DirectorySeparatorChar, local);
        Assert.EndsWith(path.Replace('/', Path.DirectorySeparatorChar), local);
    }
}
