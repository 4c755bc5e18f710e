namespace OnAccess.Config.Tests;

public sealed class SmokeTests
{
    [Fact]
    public void Parses_a_boolean() =>
        Assert.True(ClamdConf.Parse("OnAccessPrevention yes\n").ToOnAccessOptions().Prevention);
}
