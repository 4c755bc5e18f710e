using BenchmarkDotNet.Running;
using OnAccess.Benchmarks;

if (args.Length > 0 && args[0] == "tree-setup")
{
    return await TreeSetupBenchmark.RunAsync(args[1..]);
}

if (args.Length > 0 && args[0] == "clamd-farm")
{
    return await ClamdFarmBenchmark.RunAsync(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
