// The harness benchmark app: the runner core (device_runners/native/runner_core.cpp) behind an iOS launch.
//
// The host (device_runners/ios/device.py, simulator.py) puts the program and inputs into Documents and launches the
// app with the Linux runner's arguments, paths relative to Documents; launched by hand (no arguments) it reads
// them from Documents/harness/job.json ({"args": [...]}). It writes result.json and the outputs there and exits.
#import <Foundation/Foundation.h>
#import <UIKit/UIKit.h>

#include <unistd.h>

#include <string>
#include <vector>

#include "failure.h"
#include "runner_core.h"

static NSString* ThermalName(NSProcessInfoThermalState s) {
  switch (s) {
    case NSProcessInfoThermalStateNominal: return @"nominal";
    case NSProcessInfoThermalStateFair: return @"fair";
    case NSProcessInfoThermalStateSerious: return @"serious";
    case NSProcessInfoThermalStateCritical: return @"critical";
  }
  return @"unknown";
}

static std::vector<std::string> JobArguments() {
  std::vector<std::string> args;
  NSArray<NSString*>* launch = NSProcessInfo.processInfo.arguments;
  for (NSUInteger i = 1; i < launch.count; ++i) args.push_back(launch[i].UTF8String);
  if (args.empty()) {
    NSData* job = [NSData dataWithContentsOfFile:@"harness/job.json"];
    NSDictionary* d = job ? [NSJSONSerialization JSONObjectWithData:job options:0 error:nil] : nil;
    for (NSString* a in d[@"args"]) args.push_back(a.UTF8String);
  }
  return args;
}

// The benchmark; returns the exit code. Failures inside the core write the error JSON and exit(1) themselves.
static int RunJob() {
  NSString* docs = NSSearchPathForDirectoriesInDomains(NSDocumentDirectory, NSUserDomainMask, YES).firstObject;
  chdir(docs.fileSystemRepresentation);
  static std::vector<std::string> args = JobArguments();  // static: harness::g_result points into it
  std::vector<char*> argv{const_cast<char*>("HarnessRunner")};
  for (auto& a : args) argv.push_back(a.data());
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "--result") harness::g_result = args[i + 1].c_str();
  harness::Args parsed;
  std::string err = harness::parse_args(static_cast<int>(argv.size()), argv.data(), &parsed);
  if (!err.empty()) harness::fail(err);
  NSString* start = ThermalName(NSProcessInfo.processInfo.thermalState);
  int rc = harness::run_benchmark(parsed);
  // The thermal states beside the measurements: the host records them as the device's state at launch and exit.
  NSString* path = [NSString stringWithUTF8String:parsed.result.c_str()];
  NSData* data = [NSData dataWithContentsOfFile:path];
  NSMutableDictionary* r = data ? [NSJSONSerialization JSONObjectWithData:data options:NSJSONReadingMutableContainers
                                                                     error:nil] : nil;
  if ([r isKindOfClass:NSMutableDictionary.class]) {
    r[@"thermal_state_start"] = start;
    r[@"thermal_state_end"] = ThermalName(NSProcessInfo.processInfo.thermalState);
    [[NSJSONSerialization dataWithJSONObject:r options:0 error:nil] writeToFile:path atomically:YES];
  }
  return rc;
}

@interface HarnessApp : UIResponder <UIApplicationDelegate>
@property(strong, nonatomic) UIWindow* window;
@end

@implementation HarnessApp
- (BOOL)application:(UIApplication*)app didFinishLaunchingWithOptions:(NSDictionary*)options {
  app.idleTimerDisabled = YES;  // a locked screen would suspend the run
  // Off the main thread: the launch completes at once, so the launch watchdog never kills a long run.
  dispatch_async(dispatch_get_global_queue(QOS_CLASS_USER_INTERACTIVE, 0), ^{
    exit(RunJob());
  });
  return YES;
}
@end

int main(int argc, char* argv[]) {
  harness::install_handlers();
  @autoreleasepool {
    return UIApplicationMain(argc, argv, nil, NSStringFromClass(HarnessApp.class));
  }
}
