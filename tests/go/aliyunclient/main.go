// Command aliyunclient drives the emulator with upstream Terway's own cloud client library,
// github.com/aliyun/alibaba-cloud-sdk-go (RPC style, HMAC-SHA1 signatures), making the ECS/VPC
// calls upstream's pkg/aliyun/client makes, the way it makes them, and prints what it saw as one
// JSON document on stdout for tests/emulator/test_go_client.py to check.
//
// Sequence: DescribeVSwitches (both vSwitches); DescribeInstanceTypes paged by NextToken with
// MaxResults (upstream's loop); CreateNetworkInterface (Secondary, tag, ClientToken; retried on
// Throttling/InternalError as upstream); AttachNetworkInterface, then DescribeNetworkInterfaces
// by id until InUse (upstream's WaitForNetworkInterface); AssignPrivateIpAddresses twice in a
// row, each retried with backoff on Throttling as upstream; UnassignPrivateIpAddresses;
// more ENIs and DescribeNetworkInterfaces paged by NextToken/MaxResults (upstream's loop);
// CreateNetworkInterface on the exhausted vSwitch (InvalidVSwitchId.IpNotEnough);
// DetachNetworkInterface until Available; DeleteNetworkInterface for every ENI made, until
// DescribeNetworkInterfaces no longer lists them; then one call with a wrong secret and one with
// an unknown AccessKey. Exit status 0 when the sequence ran (the checks are the test's), 1 on
// an unexpected error (printed to stderr).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
)

type options struct {
	endpoint, region, ak, secret   string
	vswitch, smallVSwitch, sg, ins string
	instanceType                   string
	eniPageSize, typesPageSize     int
	extraENIs, maxAttempts         int
}

// APIError is a server error as the Go SDK surfaces it (*errors.ServerError).
type APIError struct {
	Code       string `json:"code"`
	HTTPStatus int    `json:"http_status"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
	HostID     string `json:"host_id"`
	Recommend  string `json:"recommend"`
}

// Attempt is one try of a call upstream retries: "ok" or the error it got.
type Attempt struct {
	OK    bool      `json:"ok"`
	Error *APIError `json:"error,omitempty"`
}

type report struct {
	SDK             string            `json:"sdk"`
	Calls           map[string]int    `json:"calls"`
	VSwitches       []map[string]any  `json:"vswitches"`
	TypePages       int               `json:"instance_type_pages"`
	TypeCount       int               `json:"instance_type_count"`
	Limits          map[string][2]int `json:"limits"`
	ENI             string            `json:"eni"`
	CreateStatus    string            `json:"create_status"`
	CreateAttempts  []Attempt         `json:"create_attempts"`
	AttachPolls     int               `json:"attach_polls"`
	AttachedStatus  string            `json:"attached_status"`
	AttachedTo      string            `json:"attached_to"`
	Assigned        [][]string        `json:"assigned"`
	AssignAttempts  [][]Attempt       `json:"assign_attempts"`
	Unassigned      []string          `json:"unassigned"`
	HeldAfter       []string          `json:"held_after_unassign"`
	PageSize        int               `json:"page_size"`
	Pages           int               `json:"pages"`
	PagedENIs       []string          `json:"paged_enis"`
	Created         []string          `json:"created"`
	IPNotEnough     *APIError         `json:"ip_not_enough"`
	UpstreamNextVSW bool              `json:"upstream_moves_to_next_vswitch"`
	DetachedStatus  string            `json:"detached_status"`
	LeftAfterDelete []string          `json:"left_after_delete"`
	WrongSecret     *APIError         `json:"wrong_secret"`
	UnknownKey      *APIError         `json:"unknown_key"`
}

type run struct {
	o   options
	ecs *ecs.Client
	vpc *vpc.Client
	r   *report
}

func main() {
	var o options
	flag.StringVar(&o.endpoint, "endpoint", "127.0.0.1:18080", "emulator host:port")
	flag.StringVar(&o.region, "region", "cn-hangzhou", "region")
	flag.StringVar(&o.ak, "ak", "LTAIemulatorAccessKey", "AccessKey id")
	flag.StringVar(&o.secret, "secret", "emulator-secret", "AccessKey secret")
	flag.StringVar(&o.vswitch, "vswitch", "", "vSwitch for the ENIs")
	flag.StringVar(&o.smallVSwitch, "small-vswitch", "", "exhausted vSwitch (IpNotEnough)")
	flag.StringVar(&o.sg, "security-group", "", "security group")
	flag.StringVar(&o.ins, "instance", "", "instance to attach to")
	flag.StringVar(&o.instanceType, "instance-type", "ecs.g6.large", "type whose limits to report")
	flag.IntVar(&o.eniPageSize, "eni-page-size", 500, "DescribeNetworkInterfaces MaxResults (upstream: 500)")
	flag.IntVar(&o.typesPageSize, "types-page-size", 100, "DescribeInstanceTypes MaxResults (upstream: 100)")
	flag.IntVar(&o.extraENIs, "extra-enis", 3, "ENIs made besides the attached one (for paging)")
	flag.IntVar(&o.maxAttempts, "max-attempts", 8, "tries of a retried call")
	flag.Parse()

	r := &report{Calls: map[string]int{}, Limits: map[string][2]int{}, PageSize: o.eniPageSize}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/aliyun/alibaba-cloud-sdk-go" {
				r.SDK = dep.Path + " " + dep.Version
			}
		}
	}
	x := &run{o: o, r: r}
	var err error
	if x.ecs, x.vpc, err = clients(o, o.ak, o.secret); err != nil {
		fail(err)
	}
	if err := x.sequence(); err != nil {
		out, _ := json.Marshal(r)
		fmt.Fprintf(os.Stderr, "aliyunclient: %v\npartial report: %s\n", err, out)
		os.Exit(1)
	}
	out, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "aliyunclient: %v\n", err)
	os.Exit(1)
}

// clients are made as upstream's credential/clients.go makes them: NewClientWithOptions with
// the SDK config, then Domain set to the endpoint (upstream: ECS_ENDPOINT / VPC_ENDPOINT).
func clients(o options, ak, secret string) (*ecs.Client, *vpc.Client, error) {
	cfg := sdk.NewConfig().WithScheme("HTTP").WithTimeout(20 * time.Second)
	cred := credentials.NewAccessKeyCredential(ak, secret)
	e, err := ecs.NewClientWithOptions(o.region, cfg, cred)
	if err != nil {
		return nil, nil, err
	}
	e.Domain = o.endpoint
	v, err := vpc.NewClientWithOptions(o.region, cfg, cred)
	if err != nil {
		return nil, nil, err
	}
	v.Domain = o.endpoint
	return e, v, nil
}

func (x *run) step(name string) {
	x.r.Calls[name]++
}

func asAPIError(err error) *APIError {
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		return nil
	}
	return &APIError{Code: se.ErrorCode(), HTTPStatus: se.HttpStatus(), Message: se.Message(),
		RequestID: se.RequestId(), HostID: se.HostId(), Recommend: se.Recommend()}
}

// codeIs is upstream's apiErr.ErrorCodeIs: errors.As to the SDK's Error, compare ErrorCode().
func codeIs(err error, codes ...string) bool {
	var respErr sdkerrors.Error
	if !errors.As(err, &respErr) {
		return false
	}
	for _, c := range codes {
		if respErr.ErrorCode() == c {
			return true
		}
	}
	return false
}

func token() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// retried runs call until it succeeds or fails with a code upstream does not retry, sleeping
// an exponential backoff between tries (upstream: wait.ExponentialBackoffWithContext).
func (x *run) retried(name string, retryOn []string, call func() error) ([]Attempt, error) {
	var attempts []Attempt
	delay := 250 * time.Millisecond
	for i := 0; i < x.o.maxAttempts; i++ {
		x.step(name)
		err := call()
		if err == nil {
			return append(attempts, Attempt{OK: true}), nil
		}
		attempts = append(attempts, Attempt{Error: asAPIError(err)})
		if !codeIs(err, retryOn...) {
			return attempts, err
		}
		time.Sleep(delay)
		delay *= 2
	}
	return attempts, fmt.Errorf("%s: still failing after %d tries", name, x.o.maxAttempts)
}

func (x *run) sequence() error {
	if err := x.describeVSwitches(); err != nil {
		return err
	}
	if err := x.describeInstanceTypes(); err != nil {
		return err
	}
	eni, err := x.createENI(x.o.vswitch, 1)
	if err != nil {
		return err
	}
	x.r.ENI = eni
	if err := x.attach(eni); err != nil {
		return err
	}
	if err := x.assignTwice(eni); err != nil {
		return err
	}
	if err := x.unassign(eni); err != nil {
		return err
	}
	for i := 0; i < x.o.extraENIs; i++ {
		if _, err := x.createENI(x.o.vswitch, 0); err != nil {
			return err
		}
	}
	if err := x.describePaged(); err != nil {
		return err
	}
	if err := x.ipNotEnough(); err != nil {
		return err
	}
	if err := x.detach(eni); err != nil {
		return err
	}
	if err := x.deleteAll(); err != nil {
		return err
	}
	return x.badCredentials()
}

func (x *run) describeVSwitches() error {
	for _, id := range []string{x.o.vswitch, x.o.smallVSwitch} {
		req := vpc.CreateDescribeVSwitchesRequest()
		req.VSwitchId = id
		x.step("DescribeVSwitches")
		resp, err := x.vpc.DescribeVSwitches(req)
		if err != nil {
			return fmt.Errorf("DescribeVSwitches %s: %w", id, err)
		}
		for _, v := range resp.VSwitches.VSwitch {
			x.r.VSwitches = append(x.r.VSwitches, map[string]any{
				"VSwitchId": v.VSwitchId, "ZoneId": v.ZoneId, "CidrBlock": v.CidrBlock,
				"VpcId": v.VpcId, "AvailableIpAddressCount": v.AvailableIpAddressCount})
		}
	}
	return nil
}

// describeInstanceTypes is upstream's ECSService.DescribeInstanceTypes with no type named.
func (x *run) describeInstanceTypes() error {
	nextToken := ""
	for {
		req := ecs.CreateDescribeInstanceTypesRequest()
		req.NextToken = nextToken
		req.MaxResults = requests.NewInteger(x.o.typesPageSize)
		x.step("DescribeInstanceTypes")
		resp, err := x.ecs.DescribeInstanceTypes(req)
		if err != nil {
			return fmt.Errorf("DescribeInstanceTypes: %w", err)
		}
		x.r.TypePages++
		for _, t := range resp.InstanceTypes.InstanceType {
			x.r.TypeCount++
			if t.InstanceTypeId == x.o.instanceType {
				x.r.Limits[t.InstanceTypeId] = [2]int{t.EniQuantity, t.EniPrivateIpAddressQuantity}
			}
		}
		if resp.NextToken == "" {
			return nil
		}
		nextToken = resp.NextToken
	}
}

func (x *run) createENI(vswitch string, secondary int) (string, error) {
	req := ecs.CreateCreateNetworkInterfaceRequest()
	req.VSwitchId = vswitch
	req.InstanceType = "Secondary"
	req.SecurityGroupIds = &[]string{x.o.sg}
	req.Description = "interface create by terway"
	if secondary > 0 {
		req.SecondaryPrivateIpAddressCount = requests.NewInteger(secondary)
	}
	req.Tag = &[]ecs.CreateNetworkInterfaceTag{{Key: "creator", Value: "terway"}}
	req.ClientToken = token()
	var resp *ecs.CreateNetworkInterfaceResponse
	attempts, err := x.retried("CreateNetworkInterface", []string{"Throttling", "InternalError"},
		func() (err error) {
			resp, err = x.ecs.CreateNetworkInterface(req)
			return err
		})
	if x.r.CreateAttempts == nil {
		x.r.CreateAttempts = attempts
	}
	if err != nil {
		return "", err
	}
	if x.r.CreateStatus == "" {
		x.r.CreateStatus = resp.Status
	}
	x.r.Created = append(x.r.Created, resp.NetworkInterfaceId)
	return resp.NetworkInterfaceId, nil
}

// describeByID is upstream's describeNetworkInterfaceByID (DescribeNetworkInterfaces by id).
func (x *run) describeByID(ids ...string) ([]ecs.NetworkInterfaceSet, error) {
	req := ecs.CreateDescribeNetworkInterfacesRequest()
	req.NetworkInterfaceId = &ids
	req.MaxResults = requests.NewInteger(len(ids) + 10)
	x.step("DescribeNetworkInterfaces")
	resp, err := x.ecs.DescribeNetworkInterfaces(req)
	if err != nil {
		return nil, err
	}
	return resp.NetworkInterfaceSets.NetworkInterfaceSet, nil
}

// waitStatus polls as upstream's WaitForNetworkInterface does, bounded.
func (x *run) waitStatus(eni, status string) (string, int, error) {
	last := ""
	for polls := 1; polls <= 100; polls++ {
		sets, err := x.describeByID(eni)
		if err != nil {
			return last, polls, err
		}
		if len(sets) == 1 {
			last = sets[0].Status
			if last == status {
				return last, polls, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last, 100, fmt.Errorf("%s never reached %s (last %q)", eni, status, last)
}

func (x *run) attach(eni string) error {
	req := ecs.CreateAttachNetworkInterfaceRequest()
	req.NetworkInterfaceId = eni
	req.InstanceId = x.o.ins
	x.step("AttachNetworkInterface")
	if _, err := x.ecs.AttachNetworkInterface(req); err != nil {
		return fmt.Errorf("AttachNetworkInterface: %w", err)
	}
	status, polls, err := x.waitStatus(eni, "InUse")
	x.r.AttachPolls, x.r.AttachedStatus = polls, status
	if err != nil {
		return err
	}
	sets, err := x.describeByID(eni)
	if err != nil || len(sets) != 1 {
		return fmt.Errorf("describe after attach: %v (%d found)", err, len(sets))
	}
	x.r.AttachedTo = sets[0].InstanceId
	return nil
}

// assignTwice assigns 2 then 1 addresses back to back: a throttle rule on the action refuses
// the second with Throttling, which upstream (and this) retries after a backoff.
func (x *run) assignTwice(eni string) error {
	for _, count := range []int{2, 1} {
		req := ecs.CreateAssignPrivateIpAddressesRequest()
		req.NetworkInterfaceId = eni
		req.SecondaryPrivateIpAddressCount = requests.NewInteger(count)
		req.ClientToken = token()
		var resp *ecs.AssignPrivateIpAddressesResponse
		attempts, err := x.retried("AssignPrivateIpAddresses",
			[]string{"Throttling", "InternalError", "Operation.Conflict"}, func() (err error) {
				resp, err = x.ecs.AssignPrivateIpAddresses(req)
				return err
			})
		x.r.AssignAttempts = append(x.r.AssignAttempts, attempts)
		if err != nil {
			return fmt.Errorf("AssignPrivateIpAddresses: %w", err)
		}
		x.r.Assigned = append(x.r.Assigned,
			resp.AssignedPrivateIpAddressesSet.PrivateIpSet.PrivateIpAddress)
	}
	return nil
}

func (x *run) unassign(eni string) error {
	ips := []string{x.r.Assigned[0][0]}
	req := ecs.CreateUnassignPrivateIpAddressesRequest()
	req.NetworkInterfaceId = eni
	req.PrivateIpAddress = &ips
	x.step("UnassignPrivateIpAddresses")
	if _, err := x.ecs.UnassignPrivateIpAddresses(req); err != nil {
		return fmt.Errorf("UnassignPrivateIpAddresses: %w", err)
	}
	x.r.Unassigned = ips
	sets, err := x.describeByID(eni)
	if err != nil || len(sets) != 1 {
		return fmt.Errorf("describe after unassign: %v", err)
	}
	for _, s := range sets[0].PrivateIpSets.PrivateIpSet {
		x.r.HeldAfter = append(x.r.HeldAfter, s.PrivateIpAddress)
	}
	return nil
}

// describePaged is upstream's ECSService.DescribeNetworkInterface loop (tags, NextToken,
// MaxResults; stop on a short page or an empty token).
func (x *run) describePaged() error {
	tags := []ecs.DescribeNetworkInterfacesTag{{Key: "creator", Value: "terway"}}
	nextToken := ""
	for {
		req := ecs.CreateDescribeNetworkInterfacesRequest()
		req.NextToken = nextToken
		req.Tag = &tags
		req.MaxResults = requests.NewInteger(x.o.eniPageSize)
		x.step("DescribeNetworkInterfaces")
		resp, err := x.ecs.DescribeNetworkInterfaces(req)
		if err != nil {
			return fmt.Errorf("DescribeNetworkInterfaces: %w", err)
		}
		x.r.Pages++
		for _, s := range resp.NetworkInterfaceSets.NetworkInterfaceSet {
			x.r.PagedENIs = append(x.r.PagedENIs, s.NetworkInterfaceId)
		}
		if len(resp.NetworkInterfaceSets.NetworkInterfaceSet) < x.o.eniPageSize ||
			resp.NextToken == "" {
			return nil
		}
		nextToken = resp.NextToken
	}
}

func (x *run) ipNotEnough() error {
	req := ecs.CreateCreateNetworkInterfaceRequest()
	req.VSwitchId = x.o.smallVSwitch
	req.InstanceType = "Secondary"
	req.SecurityGroupIds = &[]string{x.o.sg}
	req.SecondaryPrivateIpAddressCount = requests.NewInteger(9)
	req.ClientToken = token()
	x.step("CreateNetworkInterface")
	resp, err := x.ecs.CreateNetworkInterface(req)
	if err == nil {
		x.r.Created = append(x.r.Created, resp.NetworkInterfaceId)
		return fmt.Errorf("CreateNetworkInterface on %s succeeded", x.o.smallVSwitch)
	}
	x.r.IPNotEnough = asAPIError(err)
	x.r.UpstreamNextVSW = codeIs(err, "InvalidVSwitchId.IpNotEnough", "QuotaExceeded.PrivateIpAddress")
	return nil
}

func (x *run) detach(eni string) error {
	req := ecs.CreateDetachNetworkInterfaceRequest()
	req.NetworkInterfaceId = eni
	req.InstanceId = x.o.ins
	x.step("DetachNetworkInterface")
	if _, err := x.ecs.DetachNetworkInterface(req); err != nil {
		return fmt.Errorf("DetachNetworkInterface: %w", err)
	}
	status, _, err := x.waitStatus(eni, "Available")
	x.r.DetachedStatus = status
	return err
}

func (x *run) deleteAll() error {
	for _, id := range x.r.Created {
		req := ecs.CreateDeleteNetworkInterfaceRequest()
		req.NetworkInterfaceId = id
		x.step("DeleteNetworkInterface")
		if _, err := x.ecs.DeleteNetworkInterface(req); err != nil &&
			!codeIs(err, "InvalidEniId.NotFound") {
			return fmt.Errorf("DeleteNetworkInterface %s: %w", id, err)
		}
	}
	sets, err := x.describeByID(x.r.Created...)
	if err != nil {
		return err
	}
	x.r.LeftAfterDelete = []string{}
	for _, s := range sets {
		x.r.LeftAfterDelete = append(x.r.LeftAfterDelete, s.NetworkInterfaceId)
	}
	return nil
}

func (x *run) badCredentials() error {
	_, badVPC, err := clients(x.o, x.o.ak, x.o.secret+"-wrong")
	if err != nil {
		return err
	}
	req := vpc.CreateDescribeVSwitchesRequest()
	x.step("DescribeVSwitches")
	if _, err := badVPC.DescribeVSwitches(req); err != nil {
		x.r.WrongSecret = asAPIError(err)
	}
	badECS, _, err := clients(x.o, "LTAInobodyKnowsThisKey", x.o.secret)
	if err != nil {
		return err
	}
	x.step("DescribeNetworkInterfaces")
	if _, err := badECS.DescribeNetworkInterfaces(ecs.CreateDescribeNetworkInterfacesRequest()); err != nil {
		x.r.UnknownKey = asAPIError(err)
	}
	return nil
}
