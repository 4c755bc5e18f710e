using OnAccess.Tests;

namespace OnAccess.ClamAV.Tests;

/// <summary>Waits for a state that can be observed, checking it every few milliseconds, and fails the test when it has not come within the timeout.</summary>
internal static class Poll
{
    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, timeout);

    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? KernelTestSupport.Timeout;
        var deadline = DateTime.UtcNow + limit;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out after {limit.TotalSeconds} s waiting for {what}.");
            await Task.Delay(10, TestContext.Current.CancellationToken);
        }
    }
}
